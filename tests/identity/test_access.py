"""The single access check: care relationships contributed by domains, break-the-glass,
404 for everyone else, and every decision audited."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.conftest import City

from caregrid.audit.models import AuditEntry
from caregrid.core.actor import Actor
from caregrid.core.clock import SHANGHAI, frozen_clock, now
from caregrid.core.errors import NotFound
from caregrid.identity import access
from caregrid.identity.errors import ReasonRequired, RoleNotAllowed
from caregrid.record.service import record_encounter
from caregrid.registry import service as registry
from caregrid.registry.idnumber import make_id_number
from caregrid.registry.schemas import ResidentCreate
from caregrid.settings import get_settings


def make_resident(db: Session, city: City, *, home: int | None = None, seq: int = 1) -> int:
    number = make_id_number("371302", date(1958, 3, 14), seq)
    resident, _ = registry.register_resident(
        db,
        Actor.system(),
        ResidentCreate(
            id_number=number, name="张秀英", home_institution_id=home, grid_id=city.grid_id
        ),
    )
    return resident.id


def last_entry(db: Session) -> AuditEntry:
    return db.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()


def test_domains_contribute_relationships_without_the_access_module_knowing_them() -> None:
    assert {"break_glass", "home_institution", "encounter"} <= set(access.registered_bases())


def test_the_home_institution_sees_its_residents(db: Session, city: City) -> None:
    rid = make_resident(db, city, home=city.township_id)
    _, basis = registry.get_resident(db, city.users["gp_wang"], rid)
    assert basis == "home_institution"
    entry = last_entry(db)
    assert (entry.username, entry.role, entry.resident_id, entry.outcome, entry.basis) == (
        "gp_wang",
        "doctor",
        rid,
        "allowed",
        "home_institution",
    )
    assert entry.institution_id == city.township_id


def test_no_relationship_answers_404_and_is_audited_as_denied(db: Session, city: City) -> None:
    rid = make_resident(db, city, home=city.township_id)
    with pytest.raises(NotFound):
        registry.get_resident(db, city.users["outsider_zhao"], rid)
    entry = last_entry(db)
    assert (entry.username, entry.outcome, entry.resident_id) == ("outsider_zhao", "denied", rid)


def test_an_encounter_at_the_users_institution_creates_the_relationship(
    db: Session, city: City
) -> None:
    rid = make_resident(db, city, home=city.township_id)
    specialist = city.users["specialist_li"]
    with pytest.raises(NotFound):
        registry.get_resident(db, specialist, rid)
    record_encounter(
        db,
        Actor.system(),
        resident_id=rid,
        institution_id=city.lead_id,
        encounter_class="outpatient",
        started_at=datetime(2025, 3, 1, 9, tzinfo=SHANGHAI),
    )
    _, basis = registry.get_resident(db, specialist, rid)
    assert basis == "encounter"


@pytest.mark.parametrize("persona", ["manager_zhou", "viewer_wu", "admin_sun"])
def test_non_clinical_roles_never_see_a_record(db: Session, city: City, persona: str) -> None:
    rid = make_resident(db, city, home=city.township_id)
    with pytest.raises(NotFound):
        registry.get_resident(db, city.users[persona], rid)


def test_break_the_glass_needs_a_reason_and_is_audited(db: Session, city: City) -> None:
    rid = make_resident(db, city, home=city.township_id)
    outsider = city.users["outsider_zhao"]
    with pytest.raises(ReasonRequired):
        registry.break_glass(db, outsider, rid, "  ")
    grant = registry.break_glass(db, outsider, rid, "急诊抢救，患者意识不清")
    entry = last_entry(db)
    assert (entry.action, entry.reason, entry.resident_id) == (
        "break_glass",
        "急诊抢救，患者意识不清",
        rid,
    )
    _, basis = registry.get_resident(db, outsider, rid)
    assert basis == "break_glass"
    with frozen_clock(grant.expires_at + timedelta(seconds=1)), pytest.raises(NotFound):
        registry.get_resident(db, outsider, rid)


def test_only_clinical_roles_may_break_the_glass(db: Session, city: City) -> None:
    rid = make_resident(db, city)
    with pytest.raises(RoleNotAllowed):
        registry.break_glass(db, city.users["viewer_wu"], rid, "想看看")


def test_emergency_grant_lasts_the_configured_hours(db: Session, city: City) -> None:
    rid = make_resident(db, city)
    start = now()
    with frozen_clock(start):
        grant = registry.break_glass(db, city.users["specialist_li"], rid, "夜间急诊会诊")
    assert grant.expires_at - start == timedelta(hours=get_settings().break_glass_hours)
