"""Typed builders for family-doctor and chronic-care tests."""

from __future__ import annotations

from datetime import date
from itertools import count

from sqlalchemy.orm import Session

from caregrid.core.actor import Actor
from caregrid.familydoctor import service as fd
from caregrid.familydoctor.models import Team
from caregrid.profiles.service import active_profile
from caregrid.registry import service as registry
from caregrid.registry.idnumber import make_id_number
from caregrid.registry.models import Practitioner
from caregrid.registry.schemas import ResidentCreate
from tests.conftest import City

_seq = count(1)
SYSTEM = Actor.system()


def make_practitioner(db: Session, name: str) -> int:
    n = next(_seq)
    p = Practitioner(code=f"T-P{n:05d}", name=name, sex="male", title="主治医师")
    db.add(p)
    db.flush()
    return p.id


def make_team(db: Session, city: City, *, code: str = "T-TEAM1", base: int | None = None) -> Team:
    fd.install_packages(db, active_profile(db))
    gp = make_practitioner(db, "王建国")
    nurse = make_practitioner(db, "刘芳")
    specialist = make_practitioner(db, "李明")
    return fd.create_team(
        db,
        SYSTEM,
        code=code,
        name=f"金雀山{code[-1]}号家庭医生团队",
        base_institution_id=base or city.township_id,
        members=[
            fd.MemberInput(gp, "gp", city.township_id, leader=True),
            fd.MemberInput(nurse, "nurse", city.township_id),
            fd.MemberInput(specialist, "specialist", city.lead_id),
        ],
    )


def make_resident(
    db: Session,
    city: City,
    *,
    birth: date = date(1958, 3, 14),
    sex_digit: int = 1,
    home: int | None = 0,
    name: str = "张秀英",
) -> int:
    """A resident kept by the township centre unless `home` says otherwise (None: no home)."""
    seq = next(_seq) % 450 * 2 + sex_digit  # odd = male, even = female (GB 11643)
    number = make_id_number("371302", birth, seq)
    resident, _ = registry.register_resident(
        db,
        SYSTEM,
        ResidentCreate(
            id_number=number,
            name=name,
            grid_id=city.grid_id,
            home_institution_id=city.township_id if home == 0 else home,
        ),
    )
    return resident.id
