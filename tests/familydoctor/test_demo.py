"""The demo step: teams at every primary member, realistic coverage (higher in the elderly and
chronic groups), rates near the targets with some uncontrolled and lost, deterministic."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from caregrid.core.db import make_engine, new_session
from caregrid.demo.builder import build_demo
from caregrid.familydoctor import measures
from caregrid.familydoctor.models import Contract, Team
from caregrid.registry.models import Institution
from caregrid.registry.service import list_groups

REFERENCE = date(2026, 11, 23)


def _build(tmp_path: Path, name: str) -> object:
    engine = make_engine(f"sqlite:///{tmp_path}/{name}.db")
    report = build_demo(
        engine, profile_id="linyi", residents=2500, seed=11, password="demo-pass-123",
        reference_date=REFERENCE,
    )  # fmt: skip
    return engine, report


def test_demo_teams_contracts_and_rates_are_realistic_and_deterministic(tmp_path: Path) -> None:
    engine, report = _build(tmp_path, "a")
    _, again = _build(tmp_path, "b")
    assert report.family_doctor == again.family_doctor  # type: ignore[attr-defined]
    session = new_session(engine)  # type: ignore[arg-type]
    primary = set(
        session.scalars(
            select(Institution.id).where(
                Institution.level == "primary", Institution.group_id.is_not(None)
            )
        )
    )
    assert set(session.scalars(select(Team.base_institution_id))) == primary
    assert session.scalar(select(func.count()).select_from(Contract)) > 0
    for listed in list_groups(session):
        m = measures.group_measures(session, group_id=listed.group.id, on=REFERENCE)
        cov = m.coverage
        assert cov.rate is not None and cov.elderly_rate is not None and cov.chronic_rate
        assert 0.2 < cov.rate < 0.5
        assert cov.elderly_rate > cov.rate and cov.chronic_rate > cov.rate
        for program in (m.hypertension, m.diabetes):
            assert program.managed > 20
            assert 0.45 < float(program.standard_rate or 0) < 0.85  # target 规范管理率 ≥ 60 %
            assert 0.3 < float(program.control_rate or 0) < 0.7
            assert program.lost > 0
            assert program.controlled < program.managed
    # Contracts in force when the record's activity year opens, renewed through to today
    renewed = session.scalars(select(Contract).where(Contract.previous_contract_id.is_not(None)))
    for contract in renewed:
        previous = session.get_one(Contract, contract.previous_contract_id)
        assert (previous.status, previous.end_reason) == ("ended", "续约")
        assert previous.end_date == contract.start_date
    first_day = date(REFERENCE.year - 1, 1, 1)
    in_force = select(func.count()).where(
        Contract.start_date <= first_day, Contract.end_date > first_day
    )
    assert session.scalar(in_force) == session.scalar(
        select(func.count()).where(
            Contract.previous_contract_id.is_(None), Contract.start_date <= first_day
        )
    )
    session.close()


def test_the_activity_year_has_chronic_care_and_contracts_on_the_cockpit(tmp_path: Path) -> None:
    """The cockpit's default period is the record's activity year (the last complete one):
    chronic management, control, coverage and fulfilment are there, not only in the 12 months
    before today."""
    from caregrid.indicators.engine import DuckDBBackend, compute
    from caregrid.indicators.registry import BY_SLUG
    from caregrid.indicators.store import AnalyticsStore

    engine, _ = _build(tmp_path, "cockpit")
    store = AnalyticsStore()
    store.sync(engine)  # type: ignore[arg-type]
    slugs = ("hypertension_standard_management", "hypertension_control", "contract_coverage",
             "key_population_contract_coverage", "contract_fulfilment")  # fmt: skip
    year = REFERENCE.year - 1
    cells = compute(DuckDBBackend(store), [BY_SLUG[s] for s in slugs],
                    date(year, 1, 1), date(year, 12, 31))  # fmt: skip
    value = {c.slug: float(c.value or 0) for c in cells}
    assert 0.45 < value["hypertension_standard_management"] < 0.85
    assert 0.3 < value["hypertension_control"] < 0.7
    assert 0.2 < value["contract_coverage"] < 0.5
    assert value["key_population_contract_coverage"] > value["contract_coverage"]
    assert 0.5 < value["contract_fulfilment"] < 0.95
