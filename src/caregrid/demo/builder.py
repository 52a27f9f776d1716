"""Builds the synthetic city, one domain step after another, in one transaction.

Each domain owns its step (`registry.demo`; the accounts are `demo.accounts`). Later
capabilities add a year of activity (encounters, results, referrals, contracts) as further
steps in `build_demo`, after the residents exist, each reporting through `StepProgress`."""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from caregrid.capacity import demo as capacity_demo
from caregrid.core.clock import today
from caregrid.core.db import bulk_load_session
from caregrid.core.migrate import upgrade
from caregrid.demo.accounts import DemoAccount, create_demo_accounts
from caregrid.familydoctor import demo as familydoctor_demo
from caregrid.profiles.service import set_active_profile
from caregrid.record import demo as record_demo
from caregrid.record import recognition
from caregrid.referral import demo as referral_demo
from caregrid.registry import demo as registry_demo
from caregrid.registry.models import Institution, Resident
from caregrid.registry.service import install_default_catalogs


@dataclass
class DemoReport:
    profile_id: str
    profile_name: str
    institutions: int = 0
    groups: int = 0
    grids: int = 0
    practitioners: int = 0
    residents: int = 0
    catalog_entries: int = 0
    accounts: list[DemoAccount] = field(default_factory=list)
    password: str = ""
    password_generated: bool = False
    activity: record_demo.ActivityReport | None = None
    family_doctor: familydoctor_demo.FamilyDoctorReport | None = None
    capacity: capacity_demo.CapacityReport | None = None
    referrals: referral_demo.ReferralReport | None = None


class StepProgress:
    """What the builder tells the CLI: a named step starts (with a total) and advances."""

    def start(self, name: str, total: int | None = None) -> None: ...

    def advance(self, amount: int = 1) -> None: ...

    def done(self) -> None: ...


def reset_database(engine: Engine) -> None:
    """Start from an empty database: a SQLite file is deleted, a PostgreSQL schema dropped."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        engine.dispose()
        if database and database != ":memory:":
            for suffix in ("", "-wal", "-shm"):
                Path(database + suffix).unlink(missing_ok=True)
        return
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


def has_data(engine: Engine) -> bool:
    with engine.connect() as conn:
        try:
            return bool(conn.execute(text("SELECT 1 FROM institution LIMIT 1")).first())
        except Exception:
            return False


def _residents_by_group(
    session: Session,
) -> tuple[dict[int, Sequence[int]], dict[int, Sequence[int]]]:
    """Residents kept by each group's primary members, and those members (for bookings)."""
    rows = session.execute(
        select(Resident.id, Institution.id, Institution.group_id)
        .join(Institution, Institution.id == Resident.home_institution_id)
        .where(Institution.level.in_(("primary", "village")), Institution.group_id.is_not(None))
        .order_by(Resident.id)
    ).all()
    residents: dict[int, list[int]] = {}
    primary: dict[int, set[int]] = {}
    for rid, inst, group in rows:
        assert group is not None
        residents.setdefault(group, []).append(rid)
        primary.setdefault(group, set()).add(inst)
    return dict(residents), {g: sorted(p) for g, p in primary.items()}


def build_demo(
    engine: Engine,
    *,
    profile_id: str,
    residents: int,
    seed: int,
    password: str | None,
    progress: StepProgress | None = None,
    reference_date: date | None = None,
    activity: bool = True,
) -> DemoReport:
    """Reset the database and build the profile's demo city, with a year of clinical activity
    unless `activity` is False. Deterministic for `seed` (except a generated password)."""
    progress = progress or StepProgress()
    generated = password is None
    password = password or secrets.token_urlsafe(9)
    reference_date = reference_date or today()
    rng = random.Random(seed)

    progress.start("准备数据库")
    reset_database(engine)
    upgrade(engine)
    progress.done()

    with bulk_load_session(engine) as session:
        profile = set_active_profile(session, profile_id)
        report = DemoReport(profile_id=profile_id, profile_name=profile.meta.name)
        progress.start("建立网格、医疗集团与成员单位")
        structure = registry_demo.build_structure(session, registry_demo.load_structure(profile_id))
        report.grids = len(structure.grid_ids)
        report.groups = len(structure.group_ids)
        report.institutions = len(structure.institution_ids)
        report.catalog_entries = install_default_catalogs(session)
        recognition.install_default_rules(session)
        progress.done()

        progress.start("生成医务人员（含多点执业）")
        report.practitioners = registry_demo.generate_practitioners(session, rng, structure)
        progress.done()

        progress.start("创建演示账户")
        report.accounts = create_demo_accounts(session, password)
        progress.done()

        progress.start("生成居民主索引", total=residents)
        batches = registry_demo.resident_rows(
            rng, structure, residents, reference_date=reference_date
        )
        report.residents = registry_demo.insert_residents(session, batches, progress.advance)
        progress.done()

        if activity:
            progress.start("生成一年的诊疗活动", total=report.residents)
            # the last complete year, so nothing is dated after today
            report.activity = record_demo.generate_activity(
                session, rng, structure, year=reference_date.year - 1, progress=progress.advance
            )
            progress.done()

            progress.start("生成家庭医生签约与慢病随访")
            report.family_doctor = familydoctor_demo.generate(
                session, rng, profile, reference_date=reference_date
            )
            progress.done()

            progress.start("生成号源、床位与一年的双向转诊")
            residents_by_group, primary_by_group = _residents_by_group(session)
            report.capacity = capacity_demo.build_capacity(
                session,
                rng,
                structure,
                reference_date=reference_date,
                residents_by_group=residents_by_group,
                primary_by_group=primary_by_group,
            )
            report.referrals = referral_demo.generate_referrals(
                session, rng, year=reference_date.year - 1, reference_date=reference_date
            )
            progress.done()

        progress.start("提交")
        session.commit()
        progress.done()
    report.password = password
    report.password_generated = generated
    return report
