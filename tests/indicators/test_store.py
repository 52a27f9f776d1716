"""The analytics store copies the operational database incrementally (SQLite and PostgreSQL),
and the report service applies access rules, targets and status on top of it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.orm import Session

from caregrid.core.actor import Actor
from caregrid.core.errors import Forbidden, Invalid, NotFound
from caregrid.indicators.service import build_report, parse_period
from caregrid.indicators.store import AnalyticsStore
from caregrid.profiles.loader import load_profile
from caregrid.record.models import Diagnosis, Encounter, Procedure
from tests.conftest import City
from tests.web.conftest import make_resident


def _encounter(city: City, resident_id: int, **kw: object) -> Encounter:
    values: dict[str, object] = {
        "resident_id": resident_id,
        "institution_id": city.lead_id,
        "group_id": city.group_id,
        "encounter_class": "outpatient",
        "started_at": datetime(2025, 3, 1, 2, 0, tzinfo=UTC),
    }
    values.update(kw)
    return Encounter(**values)


def test_store_copies_encounters_with_local_dates_and_then_only_what_changed(
    db: Session, city: City
) -> None:
    resident, _ = make_resident(db, name="张三", home_institution_id=city.township_id,
                                grid_id=city.grid_id)  # fmt: skip
    # 16:30 UTC on 31 December is 00:30 on 1 January in China: a 2025 visit.
    late = _encounter(city, resident.id, institution_id=city.township_id,
                      started_at=datetime(2024, 12, 31, 16, 30, tzinfo=UTC))  # fmt: skip
    stay = _encounter(
        city,
        resident.id,
        encounter_class="inpatient",
        started_at=datetime(2025, 3, 1, 2, 0, tzinfo=UTC),
        ended_at=datetime(2025, 3, 8, 2, 0, tzinfo=UTC),
        disposition="death",
        drg_weight=1.2345,
        total_fen=100_00,
        out_of_catalogue_fen=7_00,
    )
    db.add_all([late, stay])
    db.flush()
    db.add_all(
        [
            Procedure(encounter_id=stay.id, resident_id=resident.id, code="36.1001", grade=4),
            Procedure(encounter_id=stay.id, resident_id=resident.id, code="88.7201", grade=2),
            Procedure(encounter_id=stay.id, resident_id=resident.id, code="99.0401"),
            Diagnosis(encounter_id=stay.id, resident_id=resident.id, code="I21.000", rank=1),
        ]
    )
    db.flush()
    store = AnalyticsStore()
    read = store.sync(db.connection())
    assert read["encounter"] == 2
    rows = {r["id"]: r for r in store.tables["encounter"].to_pylist()}
    assert rows[late.id]["visit_day"] == date(2025, 1, 1)
    assert rows[late.id]["is_primary"] == 1 and rows[late.id]["is_visit"] == 1
    s = rows[stay.id]
    assert (s["discharge_day"], s["los_days"], s["died"]) == (date(2025, 3, 8), 7, 1)
    assert (s["drg_w"], s["n_proc"], s["n_graded"], s["n_grade4"]) == (12345, 3, 2, 1)
    assert (s["chronic4"], s["is_lead"], s["ooc_fen"]) == (1, 1, 700)

    # nothing new: the incremental part reads nothing
    assert store.sync(db.connection())["encounter"] == 0
    # a new encounter is appended, a changed one replaces its copy
    db.add(_encounter(city, resident.id, started_at=datetime(2025, 4, 1, 3, tzinfo=UTC)))
    stay.out_of_catalogue_fen = 9_00
    stay.updated_at = datetime.now(UTC)
    db.flush()
    assert store.sync(db.connection())["encounter"] == 2
    table = store.tables["encounter"]
    assert table.num_rows == 3
    rows = {r["id"]: r for r in table.to_pylist()}
    assert rows[stay.id]["ooc_fen"] == 900
    # a deleted row cannot be patched away: the copy is read again in full
    db.delete(late)
    db.flush()
    store.sync(db.connection())
    assert sorted(store.tables["encounter"]["id"].to_pylist()) == sorted(
        i for i in rows if i != late.id
    )


def test_report_applies_profile_targets_and_statuses(db: Session, city: City) -> None:
    resident, _ = make_resident(db, name="李四", home_institution_id=city.township_id,
                                grid_id=city.grid_id)  # fmt: skip
    # 3 visits at the township, 2 at the lead hospital: 60 % primary (target >= 65 %, close
    # band 61.75 %): missed. Lead stays: 2 of 8 days -> ALOS 8 (target <= 7.8): close.
    for day in range(1, 4):
        db.add(_encounter(city, resident.id, institution_id=city.township_id,
                          started_at=datetime(2025, 5, day, 3, tzinfo=UTC)))  # fmt: skip
    for day in range(1, 3):
        db.add(_encounter(city, resident.id, started_at=datetime(2025, 5, day, 3, tzinfo=UTC)))
    for day in (1, 10):
        db.add(
            _encounter(
                city,
                resident.id,
                encounter_class="inpatient",
                started_at=datetime(2025, 6, day, 3, tzinfo=UTC),
                ended_at=datetime(2025, 6, day + 8, 3, tzinfo=UTC),
            )
        )
    db.flush()
    zhongwei = load_profile("zhongwei")
    report = build_report(db, city.users["manager_zhou"], period="2025", by="month",
                          profile=zhongwei, store=_fresh(db))  # fmt: skip
    primary = report.summary("primary_visit_share")
    assert (primary.cell.numerator, primary.cell.denominator) == (3, 5)
    assert primary.target is not None and primary.target.key == "targets.primary_visit_share"
    assert primary.status == "missed"
    alos = report.summary("average_length_of_stay")
    assert str(alos.cell.value) == "8.000000" and alos.status == "close"
    assert report.group_id == city.group_id
    months = [c.month for c in report.breakdown("primary_visit_share")]
    assert months == ["2025-05"]


def _fresh(db: Session) -> AnalyticsStore:
    store = AnalyticsStore()
    store.sync(db.connection())
    return store


def test_who_may_see_which_indicators(db: Session, city: City) -> None:
    store = _fresh(db)
    profile = load_profile("zhongwei")
    with pytest.raises(Forbidden):
        build_report(db, city.users["gp_wang"], period="2025", profile=profile, store=store)
    with pytest.raises(NotFound):  # a manager asking for another group
        build_report(db, city.users["manager_zhou"], period="2025", group_id=city.other_group_id,
                     profile=profile, store=store)  # fmt: skip
    everything = build_report(db, city.users["viewer_wu"], period="2025", by="group",
                              profile=profile, store=store)  # fmt: skip
    assert everything.group_id is None
    assert any(s.indicator.slug == "maternal_mortality" for s in everything.summaries)
    insurer = Actor(user_id=None, username="yibao", role="insurance_officer")
    costs = build_report(db, insurer, period="2025", profile=profile, store=store)
    categories = {s.indicator.category for s in costs.summaries}
    assert (
        "运营管理" in categories and "健康结果" not in categories and "健康管理" not in categories
    )
    with pytest.raises(Forbidden):
        build_report(db, insurer, period="2025", slugs=["hypertension_control"], profile=profile,
                     store=store)  # fmt: skip


def test_periods_and_their_previous_periods() -> None:
    year = parse_period("2025")
    assert (year.start, year.end, year.previous().label) == (
        date(2025, 1, 1), date(2025, 12, 31), "2024")  # fmt: skip
    month = parse_period("2024-03")
    assert (month.end, month.previous().label) == (date(2024, 3, 31), "2024-02")
    assert parse_period("2025-01").previous().label == "2024-12"
    quarter = parse_period("2025Q1")
    assert (quarter.start, quarter.end, quarter.previous().label) == (
        date(2025, 1, 1), date(2025, 3, 31), "2024Q4")  # fmt: skip
    for bad in ("25", "2025-13", "2025Q5", "2025-1"):
        with pytest.raises(Invalid):
            parse_period(bad)


@pytest.mark.parametrize("profile_id", ["lincang", "linyi", "zhongwei", "yunnan_county",
                                        "national_city"])  # fmt: skip
def test_every_profile_reports_with_its_targets(db: Session, city: City, profile_id: str) -> None:
    profile = load_profile(profile_id)
    report = build_report(db, city.users["viewer_wu"], period="2025", profile=profile,
                          store=_fresh(db))  # fmt: skip
    assert len(report.summaries) > 20
