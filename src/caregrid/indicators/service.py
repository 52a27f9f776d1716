"""The indicator report: who may see it, the period, the active profile's targets, and the
values from the engine. The API, the cockpit, the CLI, the Excel export and FHIR
MeasureReport all call `build_report`.

Who may see what (DESIGN §1):
- group managers (集团管理者) and coordinators: their own group only;
- the health commission (卫健委/管委会, read-only) and administrators: every group, and can
  compare groups;
- the insurance bureau (医保局): every group, but only the utilisation and cost indicators it
  assesses the capitation budget on (就医秩序, 服务效能, 运营管理), not clinical management
  or health outcomes;
- clinical staff: no access (403).
"""

from __future__ import annotations

import calendar
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from caregrid.core.actor import Actor
from caregrid.core.errors import Forbidden, Invalid, NotFound
from caregrid.indicators import rules
from caregrid.indicators.engine import (
    Backend,
    Cell,
    DuckDBBackend,
    EngineName,
    SparkBackend,
    compute,
)
from caregrid.indicators.registry import (
    BY_SLUG,
    DIMENSIONS,
    INDICATORS,
    Dimension,
    Indicator,
)
from caregrid.indicators.store import AnalyticsStore
from caregrid.profiles.schemas import Parameter, PolicyProfile
from caregrid.profiles.service import active_profile
from caregrid.registry.models import Grid, Group, Institution

ALL_GROUP_ROLES = frozenset({"admin", "commission_viewer", "insurance_officer", "system"})
OWN_GROUP_ROLES = frozenset({"group_manager", "coordinator"})
INSURANCE_CATEGORIES = frozenset({"就医秩序", "服务效能", "运营管理"})


def visible_indicators(actor: Actor) -> tuple[Indicator, ...]:
    if actor.role in ("admin", "commission_viewer", "system", *OWN_GROUP_ROLES):
        return INDICATORS
    if actor.role == "insurance_officer":
        return tuple(i for i in INDICATORS if i.category in INSURANCE_CATEGORIES)
    raise Forbidden("仅集团管理者、卫健委/管委会、医保经办人员和管理员可查看指标")


def scope_group(actor: Actor, group_id: int | None) -> int | None:
    """The group the actor may look at: managers see their own group only (asking for another
    answers 404: the group is not theirs to know about); oversight roles see any or all."""
    visible_indicators(actor)
    if actor.role in OWN_GROUP_ROLES:
        if actor.group_id is None:
            raise Forbidden("账户未关联医疗集团")
        if group_id is not None and group_id != actor.group_id:
            raise NotFound("没有这个医疗集团", group_id=group_id)
        return actor.group_id
    return group_id


# --- periods --------------------------------------------------------------------------------

PERIOD_RE = re.compile(r"^(\d{4})(?:-(\d{2})|Q([1-4]))?$")


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    label: str

    def previous(self) -> Period:
        """The period of the same kind just before (year, quarter or month)."""
        if self.label.count("-") == 1:
            first = self.start - timedelta(days=1)
            return parse_period(f"{first.year}-{first.month:02d}")
        if "Q" in self.label:
            year, quarter = int(self.label[:4]), int(self.label[-1])
            return parse_period(f"{year - 1}Q4" if quarter == 1 else f"{year}Q{quarter - 1}")
        return parse_period(str(self.start.year - 1))


def parse_period(text: str) -> Period:
    """``2025`` (a year), ``2025-03`` (a month) or ``2025Q2`` (a quarter); local dates."""
    match = PERIOD_RE.match(text.strip())
    if not match:
        raise Invalid("统计期应写作 2025、2025-03 或 2025Q2", field="period", value=text)
    year = int(match.group(1))
    if match.group(2):
        month = int(match.group(2))
        if not 1 <= month <= 12:
            raise Invalid("月份应在 01-12 之间", field="period", value=text)
        last = calendar.monthrange(year, month)[1]
        return Period(date(year, month, 1), date(year, month, last), f"{year}-{month:02d}")
    if match.group(3):
        quarter = int(match.group(3))
        first_month = 3 * quarter - 2
        last = calendar.monthrange(year, first_month + 2)[1]
        return Period(
            date(year, first_month, 1), date(year, first_month + 2, last), f"{year}Q{quarter}"
        )
    return Period(date(year, 1, 1), date(year, 12, 31), str(year))


def parse_by(text: str | Sequence[str] | None) -> tuple[Dimension, ...]:
    if not text:
        return ()
    parts = text.split(",") if isinstance(text, str) else list(text)
    out: list[Dimension] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        if part not in DIMENSIONS:
            raise Invalid(f"分组维度只能是 {', '.join(DIMENSIONS)}", field="by", value=part)
        out.append(part)
    return tuple(dict.fromkeys(out))


# --- the store and engines, shared per process ----------------------------------------------

_stores: dict[str, AnalyticsStore] = {}
_backends: dict[tuple[str, str], tuple[int, Backend]] = {}
_lock = threading.Lock()


def synced_store(session: Session) -> tuple[AnalyticsStore, str]:
    """The process's analytics store for this session's database, brought up to date
    (incremental) through the session's own connection, so it reads what the session sees and
    takes no second SQLite lock."""
    conn = session.connection()
    key = str(conn.engine.url)
    with _lock:
        store = _stores.setdefault(key, AnalyticsStore())
    store.sync(conn)
    return store, key


def engine_for(store: AnalyticsStore, name: EngineName, cache_key: str = "") -> Backend:
    with _lock:
        cached = _backends.get((cache_key, name))
        if cached is not None and cached[0] == store.version:
            return cached[1]
        made: Backend = SparkBackend(store) if name == "spark" else DuckDBBackend(store)
        _backends[(cache_key, name)] = (store.version, made)
        return made


# --- the report -----------------------------------------------------------------------------


@dataclass
class Target:
    key: str
    label: str
    display: str
    clause: str
    comparator: str | None
    value: Decimal | None  # numeric target (shares as fractions), None for trend targets
    trend: str | None  # "rising" / "falling"


def target_of(indicator: Indicator, profile: PolicyProfile) -> Target | None:
    for key in indicator.target_keys:
        parameter: Parameter | None = profile.get(key)
        if parameter is None:
            continue
        value = parameter.value
        numeric = None
        trend = None
        if isinstance(value, bool | list):
            continue
        if isinstance(value, int | float):
            numeric = Decimal(str(value))
        elif value in ("rising", "falling"):
            trend = value
        else:
            continue
        return Target(
            key=key,
            label=parameter.label,
            display=parameter.display_value(),
            clause=parameter.clause,
            comparator=parameter.comparator,
            value=numeric,
            trend=trend,
        )
    return None


@dataclass
class Summary:
    """One indicator for the whole period and scope: value, target, status, movement."""

    indicator: Indicator
    cell: Cell
    previous: Cell | None
    target: Target | None
    status: rules.Status | None
    movement: rules.Movement | None
    improving: bool | None


@dataclass
class Report:
    profile_id: str
    profile_name: str
    period: Period
    engine: str
    by: tuple[Dimension, ...]
    group_id: int | None
    summaries: list[Summary]
    cells: list[Cell]  # the breakdown by all of `by` together (empty when by is empty)
    by_dimension: dict[str, list[Cell]] = field(default_factory=dict)  # each dimension alone
    groups: dict[int, str] = field(default_factory=dict)
    members: dict[int, str] = field(default_factory=dict)
    grids: dict[int, str] = field(default_factory=dict)

    def summary(self, slug: str) -> Summary:
        return next(s for s in self.summaries if s.indicator.slug == slug)

    def breakdown(self, slug: str) -> list[Cell]:
        return [c for c in self.cells if c.slug == slug]

    def breakdown_by(self, dimension: str, slug: str) -> list[Cell]:
        return [c for c in self.by_dimension.get(dimension, []) if c.slug == slug]


def _status(indicator: Indicator, target: Target | None, cell: Cell, prev: Cell | None) -> Any:
    if target is None:
        return None
    if target.trend is not None:
        return rules.trend_status(cell.value, prev.value if prev else None, target.trend)
    assert target.value is not None
    return rules.target_status(cell.value, target.comparator, target.value)


def build_report(
    session: Session,
    actor: Actor,
    *,
    period: str,
    by: str | Sequence[str] | None = None,
    engine: EngineName = "duckdb",
    group_id: int | None = None,
    slugs: Sequence[str] | None = None,
    profile: PolicyProfile | None = None,
    store: AnalyticsStore | None = None,
) -> Report:
    """Every visible indicator for the period with its target and status from the active
    profile (or `profile`), plus the breakdown by the requested dimensions."""
    visible = visible_indicators(actor)
    scope = scope_group(actor, group_id)
    wanted = visible
    if slugs:
        unknown = [s for s in slugs if s not in BY_SLUG]
        if unknown:
            raise NotFound("没有这个指标", indicator=unknown[0])
        allowed = {i.slug for i in visible}
        hidden = [s for s in slugs if s not in allowed]
        if hidden:
            raise Forbidden("无权查看该指标", indicator=hidden[0])
        wanted = tuple(BY_SLUG[s] for s in slugs)
    the_period = parse_period(period)
    dims = parse_by(by)
    if engine not in ("duckdb", "spark"):
        raise Invalid("计算引擎只能是 duckdb 或 spark", field="engine", value=engine)
    profile = profile or active_profile(session)
    if store is None:
        store, url = synced_store(session)
        backend = engine_for(store, engine, url)
    else:
        backend = engine_for(store, engine, f"store-{id(store)}")
    totals = compute(backend, wanted, the_period.start, the_period.end, (), scope)
    prev_period = the_period.previous()
    previous = compute(backend, wanted, prev_period.start, prev_period.end, (), scope)
    prev_by_slug = {c.slug: c for c in previous}
    summaries = []
    for indicator, cell in zip(wanted, totals, strict=True):
        prev = prev_by_slug.get(indicator.slug)
        target = target_of(indicator, profile)
        moved = rules.movement(cell.value, prev.value if prev else None)
        summaries.append(
            Summary(
                indicator=indicator,
                cell=cell,
                previous=prev,
                target=target,
                status=_status(indicator, target, cell, prev),
                movement=moved,
                improving=rules.improving(moved, indicator.direction),
            )
        )
    cells = compute(backend, wanted, the_period.start, the_period.end, dims, scope) if dims else []
    by_dimension: dict[str, list[Cell]] = {}
    for dim in dims:
        by_dimension[dim] = (
            cells
            if len(dims) == 1
            else compute(backend, wanted, the_period.start, the_period.end, (dim,), scope)
        )
    groups = {g.id: g.name for g in session.scalars(select(Group))}
    grids = {g.id: g.name for g in session.scalars(select(Grid))}
    members = {
        i.id: i.name
        for i in session.scalars(select(Institution).where(Institution.group_id.is_not(None)))
    }
    return Report(
        profile_id=profile.id,
        profile_name=profile.name,
        period=the_period,
        engine=engine,
        by=dims,
        group_id=scope,
        summaries=summaries,
        cells=cells,
        by_dimension=by_dimension,
        groups=groups,
        members=members,
        grids=grids,
    )


# --- presentation helpers shared by the API, Excel, CLI and pages ---------------------------


def format_value(value: Decimal | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "share":
        return f"{value * 100:.2f}%"
    if unit == "ratio":
        return f"{value:.2f}:1"
    if unit == "days":
        return f"{value:.2f} 天"
    if unit == "index":
        return f"{value:.4f}"
    if unit == "count":
        return f"{int(value):,}"
    if unit == "yuan":
        return f"{value:,.2f} 元"
    if unit == "per_1000":
        return f"{value:.2f}‰"
    if unit == "per_100k":
        return f"{value:.2f}/10万"
    return str(value)


def comparable(value: Decimal | None, unit: str) -> float | None:
    """The value on the scale people read (percent for shares), for charts."""
    if value is None:
        return None
    return float(value * 100) if unit == "share" else float(value)
