"""The shared record's demo step: a year of activity calibrated to the national figures
(reference/statistics.md), costs that add up, valid ICD-10 codes, chronic patients with
repeated readings, deterministic for a seed, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, aliased

from caregrid.core.clock import SHANGHAI
from caregrid.core.db import make_engine, new_session
from caregrid.demo.builder import build_demo
from caregrid.record.demo import ActivityReport
from caregrid.record.models import Birth, Diagnosis, Encounter, Result
from caregrid.registry.icd10 import normalize_icd10
from caregrid.registry.models import Resident

RESIDENTS = 3000
YEAR = 2025


@dataclass
class Activity:
    engine: Engine
    report: ActivityReport


def run_activity(url: str, seed: int = 5) -> Activity:
    """The whole demo build, as `caregrid demo` runs it (the year of activity is the year
    before the reference date)."""
    engine = make_engine(url)
    built = build_demo(engine, profile_id="linyi", residents=RESIDENTS, seed=seed,
                       password="demo-pass-123", reference_date=date(YEAR + 1, 1, 15))  # fmt: skip
    assert built.activity is not None
    return Activity(engine, built.activity)


@pytest.fixture(scope="module")
def activity(tmp_path_factory: pytest.TempPathFactory) -> Activity:
    return run_activity(f"sqlite:///{tmp_path_factory.mktemp('activity')}/d.db")


@pytest.fixture
def session(activity: Activity) -> Iterator[Session]:
    s = new_session(activity.engine)
    yield s
    s.close()


def test_visits_per_person_are_near_the_national_figure(activity: Activity) -> None:
    assert 5.5 <= activity.report.visits_per_person <= 8


def test_about_half_of_visits_are_at_primary_level_and_most_stay_in_the_area(
    activity: Activity,
) -> None:
    assert 0.45 <= activity.report.primary_share <= 0.65
    assert 0.04 <= activity.report.out_of_area_share <= 0.16


def test_admissions_per_hundred_are_near_the_national_rate(activity: Activity) -> None:
    assert 15 <= activity.report.admissions_per_100 <= 28


def test_the_built_city_breaks_no_foreign_key(activity: Activity) -> None:
    # the demo loads with foreign-key checks off for speed (core.db.bulk_load_session)
    with activity.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        # and with the rollback journal in memory; the file is back in WAL mode afterwards
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_report_counts_match_the_tables(activity: Activity, session: Session) -> None:
    assert session.scalar(select(func.count()).select_from(Encounter)) == activity.report.encounters
    assert session.scalar(select(func.count()).select_from(Result)) == activity.report.results
    deceased = session.scalar(
        select(func.count()).select_from(Resident).where(Resident.deceased_on.is_not(None))
    )
    assert deceased == activity.report.deaths


def test_cost_parts_add_up_to_the_total_for_every_encounter(session: Session) -> None:
    e = Encounter
    by_kind = e.drug_fen + e.consumable_fen + e.exam_fen + e.treatment_fen
    by_payer = e.insurance_fen + e.out_of_catalogue_fen + e.self_pay_fen
    wrong = select(func.count()).where((by_kind != e.total_fen) | (by_payer != e.total_fen))
    assert session.scalar(wrong) == 0
    assert session.scalar(select(func.min(e.total_fen))) > 0


def test_every_diagnosis_code_is_icd10(session: Session) -> None:
    codes = session.scalars(select(Diagnosis.code).distinct()).all()
    assert len(codes) > 20
    for code in codes:
        normalize_icd10(code)


def test_hypertensive_patients_mostly_have_three_or_more_readings(session: Session) -> None:
    patients = set(
        session.scalars(select(Diagnosis.resident_id).where(Diagnosis.code == "I10.x00")).all()
    )
    readings = Counter(
        session.scalars(
            select(Result.resident_id).where(Result.item_code == "8480-6",
                                             Result.category == "vital")
        ).all()
    )  # fmt: skip
    assert len(patients) > RESIDENTS * 0.12
    with_three = sum(1 for p in patients if readings[p] >= 3)
    assert with_three / len(patients) >= 0.6


def test_no_encounter_follows_the_residents_death(session: Session) -> None:
    late = (
        select(func.count())
        .select_from(Encounter)
        .join(Resident, Resident.id == Encounter.resident_id)
        .where(Resident.deceased_on.is_not(None), func.date(Encounter.started_at)
               > Resident.deceased_on)
    )  # fmt: skip
    assert session.scalar(late) == 0


def test_every_delivery_links_a_baby_of_the_mothers_grid_born_that_day(
    activity: Activity, session: Session
) -> None:
    mother, baby = aliased(Resident), aliased(Resident)
    rows = session.execute(
        select(Encounter.started_at, mother.grid_id, baby.grid_id, baby.birth_date, Diagnosis.code)
        .join(Birth, Birth.delivery_encounter_id == Encounter.id)
        .join(mother, mother.id == Encounter.resident_id)
        .join(baby, baby.id == Birth.newborn_id)
        .join(Diagnosis, (Diagnosis.encounter_id == Encounter.id) & (Diagnosis.rank == 1))
    ).all()
    assert len(rows) == activity.report.deliveries > 0
    for started_at, mother_grid, baby_grid, born, code in rows:
        assert code in ("O80.000", "O82.000")
        assert mother_grid == baby_grid
        assert started_at.astimezone(SHANGHAI).date() == born
    deliveries = session.scalar(
        select(func.count())
        .select_from(Diagnosis)
        .where(Diagnosis.rank == 1, Diagnosis.code.in_(("O80.000", "O82.000")))
    )
    assert deliveries == len(rows)  # no delivery without its baby


def test_infants_die_only_if_born_in_a_recorded_delivery_and_live_after_birth(
    activity: Activity, session: Session
) -> None:
    born_this_year = Resident.birth_date >= date(YEAR, 1, 1)
    dead_babies = session.execute(
        select(Resident.id, Resident.birth_date, Resident.deceased_on).where(
            born_this_year, Resident.birth_date <= date(YEAR, 12, 31),
            Resident.deceased_on.is_not(None),
        )
    ).all()  # fmt: skip
    assert len(dead_babies) == activity.report.infant_deaths
    linked = set(session.scalars(select(Birth.newborn_id)))
    for rid, born, died in dead_babies:
        assert rid in linked and died >= born
    early = session.scalar(
        select(func.count())
        .select_from(Encounter)
        .join(Resident, Resident.id == Encounter.resident_id)
        .where(born_this_year, func.date(Encounter.started_at) < Resident.birth_date)
    )
    assert early == 0


def first_source_ids(engine: Engine) -> list[str | None]:
    with new_session(engine) as s:
        return list(s.scalars(select(Encounter.source_id).order_by(Encounter.id).limit(100)))


def test_the_year_is_deterministic_for_a_seed(activity: Activity, tmp_path: Path) -> None:
    again = run_activity(f"sqlite:///{tmp_path}/again.db")
    a, b = activity.report, again.report
    assert (a.encounters, a.results, a.prescriptions, a.deaths) == (
        b.encounters, b.results, b.prescriptions, b.deaths)  # fmt: skip
    assert first_source_ids(activity.engine) == first_source_ids(again.engine)


@pytest.mark.postgres
def test_the_year_loads_into_postgresql_with_copy() -> None:
    url = os.environ.get("CAREGRID_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true but CAREGRID_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL not available (set CAREGRID_TEST_POSTGRES_URL)")
    # A database of its own: the demo builder drops the schema it runs in.
    base = make_url(url)
    name = f"{base.database}_activity"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        result = run_activity(base.set(database=name).render_as_string(hide_password=False))
        assert 5.5 <= result.report.visits_per_person <= 8
        with new_session(result.engine) as s:
            assert s.scalar(select(func.count()).select_from(Encounter)) == result.report.encounters
            # The sequences follow the explicit ids COPY wrote.
            nxt = s.execute(text("SELECT nextval(pg_get_serial_sequence('encounter', 'id'))"))
            assert nxt.scalar_one() > result.report.encounters
        result.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
