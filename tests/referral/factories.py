"""Typed builders for the referral and capacity tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from caregrid.capacity import service as capacity
from caregrid.capacity.models import Slot
from caregrid.core.actor import Actor
from caregrid.registry import service as registry
from caregrid.registry.idnumber import make_id_number
from caregrid.registry.models import Department
from caregrid.registry.schemas import ResidentCreate
from tests.conftest import City

# A fixed "now" for clock-controlled tests: Monday 2026-11-23 09:00 Shanghai.
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def make_resident(
    db: Session, city: City, *, seq: int = 1, name: str = "张秀英", home: int | None = None
) -> int:
    """A resident kept by the township centre (gp_wang's care relationship)."""
    number = make_id_number("371302", date(1958, 3, 14), seq)
    resident, _ = registry.register_resident(
        db,
        Actor.system(),
        ResidentCreate(
            id_number=number,
            name=name,
            home_institution_id=home or city.township_id,
            grid_id=city.grid_id,
        ),
    )
    db.flush()
    return resident.id


def cardiology(db: Session, city: City) -> int:
    return db.scalars(
        select(Department.id).where(
            Department.institution_id == city.lead_id, Department.name == "心血管内科"
        )
    ).one()


@dataclass
class Clinic:
    schedule_id: int
    slot_ids: list[int]
    reserved_ids: list[int]
    general_ids: list[int]


def make_clinic(
    db: Session, city: City, *, slots: int = 10, start: datetime | None = None, minutes: int = 15
) -> Clinic:
    """A cardiology clinic at the lead hospital with `slots` slots starting `start` (default:
    two days after T0, beyond the release lead time)."""
    system = Actor.system()
    schedule = capacity.create_schedule(
        db,
        system,
        institution_id=city.lead_id,
        department_id=cardiology(db, city),
        name=f"心血管内科专家门诊{slots}-{minutes}",
        registration_fee_fen=5000,
    )
    first = start or (T0 + timedelta(days=2))
    published = capacity.publish_slots(
        db,
        system,
        schedule.id,
        starts=[first + timedelta(minutes=minutes * i) for i in range(slots)],
        minutes=minutes,
    )
    db.flush()
    return Clinic(
        schedule.id,
        [s.id for s in published],
        [s.id for s in published if s.pool == "reserved"],
        [s.id for s in published if s.pool == "general"],
    )


def slot_status(db: Session, slot_id: int) -> str:
    return db.scalars(select(Slot.status).where(Slot.id == slot_id)).one()
