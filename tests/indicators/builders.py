"""Typed builders for hand-built analytics-store rows (the store's own columns)."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace
from typing import Any

from caregrid.indicators.engine import DuckDBBackend, compute
from caregrid.indicators.registry import BY_SLUG, Dimension
from caregrid.indicators.store import AnalyticsStore, contract_row, encounter_defaults

G1, G2 = 1, 2
LEAD, TOWN, VILLAGE, SECOND = 10, 11, 12, 20  # LEAD, TOWN, VILLAGE in G1; SECOND leads G2
YEAR = (date(2025, 1, 1), date(2025, 12, 31))

_ids = {"n": 0}


def _next() -> int:
    _ids["n"] += 1
    return _ids["n"]


def visit(
    on: date,
    *,
    member: int | None = TOWN,
    group: int | None = G1,
    primary: bool | None = None,
    lead: bool | None = None,
    scope: str = "local",
    tcm: bool = False,
    resident: int = 1,
    home_group: int | None = G1,
    total_fen: int = 0,
    ooc_fen: int = 0,
) -> dict[str, Any]:
    row = encounter_defaults()
    row.update(
        id=_next(),
        resident_id=resident,
        group_id=group,
        resident_group=home_group,
        member=member,
        in_group=int(member is not None),
        is_primary=int(primary if primary is not None else member in (TOWN, VILLAGE)),
        is_lead=int(lead if lead is not None else member in (LEAD, SECOND)),
        is_visit=1,
        local=int(scope == "local"),
        in_city=int(scope in ("local", "out_of_county")),
        visit_day=on,
        bill_day=on,
        tcm=int(tcm),
        total_fen=total_fen,
        ooc_fen=ooc_fen,
    )
    return row


def stay(
    admitted: date,
    discharged: date | None,
    *,
    member: int | None = LEAD,
    group: int | None = G1,
    scope: str = "local",
    drg_w: int | None = None,
    graded: int = 0,
    grade4: int = 0,
    died: bool = False,
    delivery: bool = False,
    chronic4: bool = False,
    resident: int = 1,
    home_group: int | None = G1,
    total_fen: int = 0,
    ooc_fen: int = 0,
) -> dict[str, Any]:
    from datetime import timedelta

    row = encounter_defaults()
    los = None if discharged is None else max(1, (discharged - admitted).days)
    row.update(
        id=_next(),
        resident_id=resident,
        group_id=group,
        resident_group=home_group,
        member=member,
        in_group=int(member is not None),
        is_primary=int(member in (TOWN, VILLAGE)),
        is_lead=int(member in (LEAD, SECOND)),
        is_inpatient=1,
        local=int(scope == "local"),
        in_city=int(scope in ("local", "out_of_county")),
        visit_day=admitted,
        discharge_day=discharged,
        bill_day=discharged,
        los_days=los,
        drg_w=drg_w,
        n_graded=graded,
        n_grade4=grade4,
        n_proc=graded,
        operated=int(graded > 0),
        died=int(died),
        delivery=int(delivery),
        maternal_until=(discharged + timedelta(days=42)) if delivery and discharged else None,
        chronic4=int(chronic4),
        total_fen=total_fen,
        ooc_fen=ooc_fen,
    )
    return row


def resident(
    rid: int,
    born: date,
    *,
    died: date | None = None,
    female: bool = False,
    group: int | None = G1,
    member: int | None = TOWN,
) -> dict[str, Any]:
    return {
        "id": rid,
        "group_id": group,
        "member": member,
        "female": int(female),
        "birth_date": born,
        "deceased_on": died,
    }


def contract(
    cid: int,
    rid: int,
    start: date,
    end: date,
    package: int,
    *,
    group: int | None = G1,
    member: int | None = TOWN,
    grid: int | None = None,
    ended: date | None = None,
) -> dict[str, Any]:
    """A store contract row, derived by the store's own conversion (contract years)."""
    return contract_row(
        SimpleNamespace(
            id=cid, resident_id=rid, group_id=group, base_institution_id=member, grid_id=grid,
            package_id=package, start_date=start, end_date=end, ended_on=ended,
        )
    )  # fmt: skip


def package_service(sid: int, package: int, code: str, times: int) -> dict[str, Any]:
    return {"id": sid, "package_id": package, "code": code, "times": times,
            "followup": int(code == "chronic_followup")}  # fmt: skip


def delivery(did: int, cid: int, code: str, on: date) -> dict[str, Any]:
    return {"id": did, "contract_id": cid, "code": code, "day": on}


def store(**tables: list[dict[str, Any]]) -> AnalyticsStore:
    return AnalyticsStore.from_tables(tables)


def run(
    s: AnalyticsStore,
    slug: str,
    by: tuple[Dimension, ...] = (),
    period: tuple[date, date] = YEAR,
    group_id: int | None = None,
) -> dict[tuple[Any, ...], tuple[int, int | None, Any]]:
    """{(group, member, month, grid): (numerator, denominator, value)} for one indicator."""
    cells = compute(DuckDBBackend(s), [BY_SLUG[slug]], *period, by, group_id)
    return {c.key: (c.numerator, c.denominator, c.value) for c in cells}


ALL = (None, None, None, None)
