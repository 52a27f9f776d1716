"""The analytics store: an incremental Arrow copy of what the indicators read.

Data path (decision). DuckDB's sqlite and postgres scanner extensions cannot be downloaded on
these machines, and DuckDB 2.0 does not work with Ibis 12. So caregrid pins ``duckdb==1.5.5``
(the version Ibis 12 is tested with; ``sqlglot<28`` for the same reason) and does **not** use
the scanner extensions at all: it moves the data itself. Each source below is one SQLAlchemy
Core query, so the same code reads SQLite and PostgreSQL; rows come out in id order, get their
derived columns in Python (local dates in Asia/Shanghai, length of stay, integer DRG weights)
and land in a ``pyarrow.Table`` per source. The same Arrow tables feed DuckDB (zero-copy) and
Spark (``createDataFrame``), which is what makes the two engines see identical inputs.

Incremental: every source remembers the highest id it has copied. A sync reads only rows with
a larger id, plus, for tables with an ``updated_at`` column (encounters, residents), rows
changed since the previous sync, which replace their old copies. Small tables whose rows change
state without a timestamp (referrals, slots, beds, chronic enrolments, contracts, package
services) are re-read whole; they are orders of magnitude smaller than the encounter table.
Append-only ones (follow-ups, service deliveries, order decisions) are read by id only.
Before patching, a sync checks that the database still holds exactly the rows the copy holds
up to its id watermark (one indexed count); when rows were deleted (or rolled back) the
source is read again in full. `save` writes the store as Parquet files (the benchmark reads
them).

Every measure column is an integer (counts, fen, DRG weight x 10,000, days) so that sums are
exact and DuckDB and Spark agree to the last digit; ratios are taken afterwards in Decimal.
The store reads other domains' tables directly: it is a read-only replica, like a reporting
database, never a way to change their state (STYLE: cross-domain calls go through services;
an analytical copy is the documented exception).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import Executable

from caregrid.capacity.models import Bed, BedPool, BedStay, Slot
from caregrid.chronic.models import FACE_TO_FACE_MODES, ChronicEnrolment, FollowUp
from caregrid.familydoctor import rules as fd_rules
from caregrid.familydoctor.models import Contract, PackageService, ServiceDelivery, Team
from caregrid.record.models import Diagnosis, Encounter, OrderDecision, Procedure
from caregrid.referral.models import Referral
from caregrid.registry.models import Institution, Resident

CHINA = timedelta(hours=8)  # Asia/Shanghai has no daylight saving time
# The four major chronic diseases (WHO / 健康中国 2030 重大慢性病过早死亡率): ICD-10 ranges of
# the underlying cause (cardiovascular I00-I99, cancer C00-C97, diabetes E10-E14, chronic
# respiratory J30-J98).
CHRONIC4_RANGES = (("I00", "I99"), ("C00", "C97"), ("E10", "E14"), ("J30", "J98"))
DELIVERY_PREFIXES = ("O80", "O81", "O82", "O83", "O84")  # delivery (分娩) as principal diagnosis


def local_day(value: datetime | None) -> date | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value.astimezone(UTC) + CHINA).date()


def is_chronic4(code: str | None) -> bool:
    if not code:
        return False
    head = code[:3].upper()
    return any(low <= head <= high for low, high in CHRONIC4_RANGES)


def is_delivery(code: str | None) -> bool:
    return bool(code) and code.upper().startswith(DELIVERY_PREFIXES)  # type: ignore[union-attr]


Row = dict[str, Any]


@dataclass(frozen=True)
class Source:
    """One table of the store: its Arrow schema, the query for new (and changed) rows, and
    how a database row becomes a store row."""

    name: str
    schema: pa.Schema
    query: Callable[[int, datetime | None], Executable]
    convert: Callable[[Any], Row]
    incremental: bool = True
    updated_at: Any = None  # the column whose changes are re-read, if the table has one
    id_column: Any = None  # for incremental sources: the primary key (row-count check)


def _encounter_query(after_id: int, since: datetime | None) -> Executable:
    procs = (
        select(
            Procedure.encounter_id.label("encounter_id"),
            func.count().label("n_proc"),
            func.sum(case((Procedure.grade.is_not(None), 1), else_=0)).label("n_graded"),
            func.sum(case((Procedure.grade == 4, 1), else_=0)).label("n_grade4"),
        )
        .group_by(Procedure.encounter_id)
        .subquery()
    )
    dx = aliased(Diagnosis)
    home = aliased(Resident)
    home_member = aliased(Institution)
    changed = Encounter.id > after_id
    if since is not None:
        changed = or_(changed, Encounter.updated_at > since)
    return (
        select(
            Encounter.id,
            Encounter.resident_id,
            Encounter.group_id,
            Encounter.institution_id,
            Institution.level,
            Institution.role,
            Institution.grid_id.label("member_grid"),
            home.grid_id.label("grid"),
            home_member.group_id.label("resident_group"),
            Encounter.encounter_class,
            Encounter.area_scope,
            Encounter.started_at,
            Encounter.ended_at,
            Encounter.disposition,
            Encounter.tcm,
            Encounter.drg_weight,
            Encounter.total_fen,
            Encounter.out_of_catalogue_fen,
            dx.code.label("dx"),
            func.coalesce(procs.c.n_proc, 0).label("n_proc"),
            func.coalesce(procs.c.n_graded, 0).label("n_graded"),
            func.coalesce(procs.c.n_grade4, 0).label("n_grade4"),
        )
        .outerjoin(Institution, Institution.id == Encounter.institution_id)
        .outerjoin(home, home.id == Encounter.resident_id)
        .outerjoin(home_member, home_member.id == home.home_institution_id)
        .outerjoin(dx, and_(dx.encounter_id == Encounter.id, dx.rank == 1))
        .outerjoin(procs, procs.c.encounter_id == Encounter.id)
        .where(changed)
        .order_by(Encounter.id)
    )


def _encounter_row(r: Any) -> Row:
    inpatient = r.encounter_class == "inpatient"
    visit_day = local_day(r.started_at)
    discharge_day = local_day(r.ended_at) if inpatient else None
    los = None
    if discharge_day is not None and visit_day is not None:
        # 住院天数 = 出院日期 - 入院日期; a same-day stay counts one day (卫生统计指标解释).
        los = max(1, (discharge_day - visit_day).days)
    return {
        "id": r.id,
        "resident_id": r.resident_id,
        "group_id": r.group_id,
        "member": r.institution_id,
        "grid": r.grid,
        "member_grid": r.member_grid,
        "resident_group": r.resident_group,
        "in_group": int(r.institution_id is not None),
        "is_primary": int(r.level in ("primary", "village")),
        "is_lead": int(r.role == "lead"),
        "is_visit": int(r.encounter_class in ("outpatient", "emergency")),
        "is_inpatient": int(inpatient),
        "local": int(r.area_scope == "local"),
        "in_city": int(r.area_scope in ("local", "out_of_county")),
        "visit_day": visit_day,
        "discharge_day": discharge_day,
        "bill_day": discharge_day if inpatient else visit_day,
        "los_days": los,
        "died": int(r.disposition == "death"),
        "tcm": int(bool(r.tcm)),
        "drg_w": None if r.drg_weight is None else round(float(r.drg_weight) * 10000),
        "total_fen": int(r.total_fen or 0),
        "ooc_fen": int(r.out_of_catalogue_fen or 0),
        "n_proc": int(r.n_proc or 0),
        "operated": int((r.n_graded or 0) > 0),
        "n_graded": int(r.n_graded or 0),
        "n_grade4": int(r.n_grade4 or 0),
        "delivery": int(inpatient and is_delivery(r.dx)),
        # Maternal deaths: during the delivery stay or within 42 days after it (ICD-10).
        "maternal_until": (
            discharge_day + timedelta(days=42)
            if discharge_day is not None and inpatient and is_delivery(r.dx)
            else None
        ),
        "chronic4": int(is_chronic4(r.dx)),
    }


ENCOUNTER_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("resident_id", pa.int64()),
        ("group_id", pa.int64()),
        ("member", pa.int64()),
        ("grid", pa.int64()),  # the resident's grid (网格)
        ("member_grid", pa.int64()),  # the grid of the institution that gave the care
        ("resident_group", pa.int64()),  # the group of the resident's home institution
        ("in_group", pa.int64()),
        ("is_primary", pa.int64()),
        ("is_lead", pa.int64()),
        ("is_visit", pa.int64()),
        ("is_inpatient", pa.int64()),
        ("local", pa.int64()),
        ("in_city", pa.int64()),
        ("visit_day", pa.date32()),
        ("discharge_day", pa.date32()),
        ("bill_day", pa.date32()),
        ("los_days", pa.int64()),
        ("died", pa.int64()),
        ("tcm", pa.int64()),
        ("drg_w", pa.int64()),
        ("total_fen", pa.int64()),
        ("ooc_fen", pa.int64()),
        ("n_proc", pa.int64()),
        ("operated", pa.int64()),
        ("n_graded", pa.int64()),
        ("n_grade4", pa.int64()),
        ("delivery", pa.int64()),
        ("maternal_until", pa.date32()),
        ("chronic4", pa.int64()),
    ]
)


def _resident_query(after_id: int, since: datetime | None) -> Executable:
    changed = Resident.id > after_id
    if since is not None:
        changed = or_(changed, Resident.updated_at > since)
    return (
        select(
            Resident.id,
            Institution.group_id,
            Resident.home_institution_id,
            Resident.grid_id,
            Resident.sex,
            Resident.birth_date,
            Resident.deceased_on,
        )
        .outerjoin(Institution, Institution.id == Resident.home_institution_id)
        .where(changed)
        .order_by(Resident.id)
    )


def _resident_row(r: Any) -> Row:
    return {
        "id": r.id,
        "group_id": r.group_id,
        "member": r.home_institution_id,
        "grid": r.grid_id,
        "female": int(r.sex in ("female", "F", "女")),
        "birth_date": r.birth_date,
        "deceased_on": r.deceased_on,
    }


RESIDENT_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("group_id", pa.int64()),
        ("member", pa.int64()),
        ("grid", pa.int64()),
        ("female", pa.int64()),
        ("birth_date", pa.date32()),
        ("deceased_on", pa.date32()),
    ]
)


def _referral_query(after_id: int, since: datetime | None) -> Executable:
    return (
        select(
            Referral.id,
            Referral.group_id,
            Referral.direction,
            Referral.status,
            Referral.from_institution_id,
            Institution.grid_id,
            Referral.to_institution_id,
            Referral.submitted_at,
            Referral.accepted_at,
            Referral.completed_at,
            Referral.closed_at,
        )
        .outerjoin(Institution, Institution.id == Referral.from_institution_id)
        .order_by(Referral.id)
    )


def _referral_row(r: Any) -> Row:
    return {
        "id": r.id,
        "group_id": r.group_id,
        "member": r.from_institution_id,
        "grid": r.grid_id,
        "to_member": r.to_institution_id,
        "up": int(r.direction == "up"),
        "down": int(r.direction == "down"),
        "submitted_day": local_day(r.submitted_at),
        "accepted": int(r.accepted_at is not None),
        "cancelled": int(r.status == "cancelled"),
        "closed": int(r.status == "completed" or r.closed_at is not None),
    }


REFERRAL_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("group_id", pa.int64()),
        ("member", pa.int64()),
        ("grid", pa.int64()),  # the referring institution's grid
        ("to_member", pa.int64()),
        ("up", pa.int64()),
        ("down", pa.int64()),
        ("submitted_day", pa.date32()),
        ("accepted", pa.int64()),
        ("cancelled", pa.int64()),
        ("closed", pa.int64()),
    ]
)


def _slot_query(after_id: int, since: datetime | None) -> Executable:
    return (
        select(
            Slot.id,
            Slot.group_id,
            Slot.institution_id,
            Institution.grid_id,
            Slot.start_at,
            Slot.pool,
            Slot.reserved_offered,
            Slot.released_at,
            Slot.status,
        )
        .outerjoin(Institution, Institution.id == Slot.institution_id)
        .order_by(Slot.id)
    )


def _slot_row(r: Any) -> Row:
    reserved = bool(r.reserved_offered)
    return {
        "id": r.id,
        "group_id": r.group_id,
        "member": r.institution_id,
        "grid": r.grid_id,
        "day": local_day(r.start_at),
        "reserved_offered": int(reserved),
        "booked": int(r.status == "booked"),
        # Used as reserved: booked while still in the reserved pool (not after release).
        "reserved_used": int(reserved and r.status == "booked" and r.released_at is None),
    }


SLOT_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("group_id", pa.int64()),
        ("member", pa.int64()),
        ("grid", pa.int64()),
        ("day", pa.date32()),
        ("reserved_offered", pa.int64()),
        ("booked", pa.int64()),
        ("reserved_used", pa.int64()),
    ]
)


def _decision_query(after_id: int, since: datetime | None) -> Executable:
    return (
        select(
            OrderDecision.id,
            OrderDecision.group_id,
            OrderDecision.institution_id,
            Institution.grid_id,
            OrderDecision.decision,
            OrderDecision.avoided_cost_fen,
            OrderDecision.decided_at,
        )
        .outerjoin(Institution, Institution.id == OrderDecision.institution_id)
        .where(OrderDecision.id > after_id)
        .order_by(OrderDecision.id)
    )


def _decision_row(r: Any) -> Row:
    used = r.decision == "used_existing"
    return {
        "id": r.id,
        "group_id": r.group_id,
        "member": r.institution_id,
        "grid": r.grid_id,
        "day": local_day(r.decided_at),
        "used": int(used),
        "avoided_fen": int(r.avoided_cost_fen or 0) if used else 0,
    }


DECISION_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("group_id", pa.int64()),
        ("member", pa.int64()),
        ("grid", pa.int64()),
        ("day", pa.date32()),
        ("used", pa.int64()),
        ("avoided_fen", pa.int64()),
    ]
)


def _enrolment_query(after_id: int, since: datetime | None) -> Executable:
    return (
        select(
            ChronicEnrolment.id,
            ChronicEnrolment.resident_id,
            ChronicEnrolment.group_id,
            ChronicEnrolment.institution_id,
            Resident.grid_id,
            ChronicEnrolment.program,
            ChronicEnrolment.enrolled_on,
            ChronicEnrolment.closed_on,
        )
        .outerjoin(Resident, Resident.id == ChronicEnrolment.resident_id)
        .order_by(ChronicEnrolment.id)
    )


def _enrolment_row(r: Any) -> Row:
    return {
        "id": r.id,
        "resident_id": r.resident_id,
        "group_id": r.group_id,
        "member": r.institution_id,
        "grid": r.grid_id,
        "program": r.program,
        "enrolled_on": r.enrolled_on,
        "enrolled_ord": r.enrolled_on.toordinal(),
        "closed_on": r.closed_on,
    }


ENROLMENT_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("resident_id", pa.int64()),
        ("group_id", pa.int64()),
        ("member", pa.int64()),
        ("grid", pa.int64()),  # the patient's grid
        ("program", pa.string()),
        ("enrolled_on", pa.date32()),
        ("enrolled_ord", pa.int64()),  # day number, for the pro-rata follow-up requirement
        ("closed_on", pa.date32()),
    ]
)


def _followup_query(after_id: int, since: datetime | None) -> Executable:
    return (
        select(
            FollowUp.id,
            FollowUp.enrolment_id,
            FollowUp.resident_id,
            FollowUp.followed_on,
            FollowUp.controlled,
            FollowUp.mode,
        )
        .where(FollowUp.id > after_id)
        .order_by(FollowUp.id)
    )


def _followup_row(r: Any) -> Row:
    return {
        "id": r.id,
        "enrolment_id": r.enrolment_id,
        "resident_id": r.resident_id,
        "followed_on": r.followed_on,
        "controlled": int(bool(r.controlled)),
        "face": int(r.mode in FACE_TO_FACE_MODES),
    }


FOLLOWUP_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("enrolment_id", pa.int64()),
        ("resident_id", pa.int64()),
        ("followed_on", pa.date32()),
        ("controlled", pa.int64()),
        ("face", pa.int64()),
    ]
)


def _contract_query(after_id: int, since: datetime | None) -> Executable:
    return (
        select(
            Contract.id,
            Contract.resident_id,
            Contract.group_id,
            Team.base_institution_id,
            Resident.grid_id,
            Contract.package_id,
            Contract.start_date,
            Contract.end_date,
            Contract.ended_on,
        )
        .outerjoin(Team, Team.id == Contract.team_id)
        .outerjoin(Resident, Resident.id == Contract.resident_id)
        .order_by(Contract.id)
    )


def contract_row(r: Any) -> Row:
    row: Row = {
        "id": r.id,
        "resident_id": r.resident_id,
        "group_id": r.group_id,
        "member": r.base_institution_id,
        "grid": r.grid_id,
        "package_id": r.package_id,
        "start_date": r.start_date,
        "end_date": r.end_date,
        # the last day the contract covered: its end date, or the day before it was ended
        "last_day": min(r.end_date, r.ended_on - timedelta(days=1)) if r.ended_on else r.end_date,
    }
    years = fd_rules.contract_years(r.start_date, r.end_date)
    for index in range(fd_rules.MAX_CONTRACT_YEARS):
        first, days = years[index] if index < len(years) else (None, None)
        row[f"y{index}_ord"] = first.toordinal() if first is not None else None
        row[f"y{index}_days"] = days
    return row


CONTRACT_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("resident_id", pa.int64()),
        ("group_id", pa.int64()),
        ("member", pa.int64()),  # the team's base institution
        ("grid", pa.int64()),  # the resident's grid
        ("package_id", pa.int64()),
        ("start_date", pa.date32()),
        ("end_date", pa.date32()),
        ("last_day", pa.date32()),
        # the contract years (familydoctor.rules.contract_years): first day as a day number
        # and length in days, for the services due by a day (履约率)
        *[
            (f"y{index}_{part}", pa.int64())
            for index in range(fd_rules.MAX_CONTRACT_YEARS)
            for part in ("ord", "days")
        ],
    ]
)


def _package_service_query(after_id: int, since: datetime | None) -> Executable:
    return select(
        PackageService.id,
        PackageService.package_id,
        PackageService.service_code,
        PackageService.times_per_year,
    ).order_by(PackageService.id)


def _package_service_row(r: Any) -> Row:
    return {
        "id": r.id,
        "package_id": r.package_id,
        "code": r.service_code,
        "times": r.times_per_year,
        "followup": int(r.service_code == fd_rules.FOLLOWUP),
    }


PACKAGE_SERVICE_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("package_id", pa.int64()),
        ("code", pa.string()),
        ("times", pa.int64()),
        ("followup", pa.int64()),  # delivered by chronic face-to-face follow-ups
    ]
)


def _delivery_query(after_id: int, since: datetime | None) -> Executable:
    return (
        select(
            ServiceDelivery.id,
            ServiceDelivery.contract_id,
            ServiceDelivery.service_code,
            ServiceDelivery.delivered_on,
        )
        .where(ServiceDelivery.id > after_id)
        .order_by(ServiceDelivery.id)
    )


def _delivery_row(r: Any) -> Row:
    return {
        "id": r.id,
        "contract_id": r.contract_id,
        "code": r.service_code,
        "day": r.delivered_on,
    }


DELIVERY_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("contract_id", pa.int64()),
        ("code", pa.string()),
        ("day", pa.date32()),
    ]
)


def _bed_query(after_id: int, since: datetime | None) -> Executable:
    return (
        select(
            Bed.id,
            BedPool.group_id,
            BedPool.institution_id,
            Institution.grid_id,
            Bed.pool,
            BedPool.created_at,
        )
        .join(BedPool, BedPool.id == Bed.bed_pool_id)
        .outerjoin(Institution, Institution.id == BedPool.institution_id)
        .order_by(Bed.id)
    )


def _bed_row(r: Any) -> Row:
    return {
        "id": r.id,
        "group_id": r.group_id,
        "member": r.institution_id,
        "grid": r.grid_id,
        "reserved": int(r.pool == "reserved"),
        # the day the bed entered the pool (None: before that was recorded, i.e. always)
        "since": local_day(r.created_at),
    }


BED_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("group_id", pa.int64()),
        ("member", pa.int64()),
        ("grid", pa.int64()),
        ("reserved", pa.int64()),
        ("since", pa.date32()),
    ]
)


def _stay_query(after_id: int, since: datetime | None) -> Executable:
    return (
        select(
            BedStay.id,
            BedStay.group_id,
            BedPool.institution_id,
            Institution.grid_id,
            BedStay.pool,
            BedStay.admitted_at,
        )
        .join(Bed, Bed.id == BedStay.bed_id)
        .join(BedPool, BedPool.id == Bed.bed_pool_id)
        .outerjoin(Institution, Institution.id == BedPool.institution_id)
        .order_by(BedStay.id)
    )


def _stay_row(r: Any) -> Row:
    return {
        "id": r.id,
        "group_id": r.group_id,
        "member": r.institution_id,
        "grid": r.grid_id,
        "day": local_day(r.admitted_at),
        "reserved": int(r.pool == "reserved"),
    }


STAY_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("group_id", pa.int64()),
        ("member", pa.int64()),
        ("grid", pa.int64()),
        ("day", pa.date32()),
        ("reserved", pa.int64()),
    ]
)

SOURCES: tuple[Source, ...] = (
    Source(
        "encounter",
        ENCOUNTER_SCHEMA,
        _encounter_query,
        _encounter_row,
        updated_at=Encounter.updated_at,
        id_column=Encounter.id,
    ),
    Source(
        "resident",
        RESIDENT_SCHEMA,
        _resident_query,
        _resident_row,
        updated_at=Resident.updated_at,
        id_column=Resident.id,
    ),
    Source("referral", REFERRAL_SCHEMA, _referral_query, _referral_row, incremental=False),
    Source("slot", SLOT_SCHEMA, _slot_query, _slot_row, incremental=False),
    Source("bed", BED_SCHEMA, _bed_query, _bed_row, incremental=False),
    Source("bed_stay", STAY_SCHEMA, _stay_query, _stay_row, incremental=False),
    Source(
        "decision",
        DECISION_SCHEMA,
        _decision_query,
        _decision_row,
        id_column=OrderDecision.id,
    ),
    Source("enrolment", ENROLMENT_SCHEMA, _enrolment_query, _enrolment_row, incremental=False),
    Source("contract", CONTRACT_SCHEMA, _contract_query, contract_row, incremental=False),
    Source(
        "package_service",
        PACKAGE_SERVICE_SCHEMA,
        _package_service_query,
        _package_service_row,
        incremental=False,
    ),
    Source(
        "delivery",
        DELIVERY_SCHEMA,
        _delivery_query,
        _delivery_row,
        id_column=ServiceDelivery.id,
    ),
    Source(
        "followup",
        FOLLOWUP_SCHEMA,
        _followup_query,
        _followup_row,
        id_column=FollowUp.id,
    ),
)
SOURCE_BY_NAME = {source.name: source for source in SOURCES}
BATCH = 50_000


def _to_arrow(rows: Sequence[Row], schema: pa.Schema) -> pa.Table:
    columns = {name: [row[name] for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema)


@dataclass
class AnalyticsStore:
    """Arrow tables by source name, with the watermarks of the last sync."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    max_ids: dict[str, int] = field(default_factory=dict)
    max_updated: dict[str, datetime] = field(default_factory=dict)
    synced_at: datetime | None = None
    version: int = 0  # bumped whenever a sync changes a table (engines re-register then)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def table(self, name: str) -> pa.Table:
        return self.tables.get(name) or SOURCE_BY_NAME[name].schema.empty_table()

    def sync(self, bind: Engine | Connection) -> dict[str, int]:
        """Copy new and changed rows from the operational database. Returns rows read per
        source. Idempotent: a second sync with no changes reads nothing incremental."""
        with self.lock:
            read: dict[str, int] = {}
            if isinstance(bind, Engine):
                with bind.connect() as conn:
                    read = self._sync(conn)
            else:
                read = self._sync(bind)
            self.synced_at = datetime.now(UTC)
            return read

    def _sync(self, conn: Connection) -> dict[str, int]:
        read: dict[str, int] = {}
        changed = False
        for source in SOURCES:
            if source.incremental and source.name in self.tables:
                # Rows deleted (or rolled back) in the database since the last sync: the
                # copy can no longer be patched, so this source is read again in full.
                known_top = self.max_ids.get(source.name, 0)
                in_db = conn.scalar(
                    select(func.count())
                    .select_from(source.id_column.table)
                    .where(source.id_column <= known_top)
                )
                if in_db != self.tables[source.name].num_rows:
                    del self.tables[source.name]
                    self.max_ids.pop(source.name, None)
                    self.max_updated.pop(source.name, None)
            after = self.max_ids.get(source.name, 0) if source.incremental else 0
            since = self.max_updated.get(source.name) if source.incremental else None
            if source.updated_at is not None:
                # The database's own latest change time, read before the rows: the next sync
                # re-reads rows changed after it (ids catch rows inserted without one).
                latest = conn.scalar(select(func.max(source.updated_at)))
                if latest is not None:
                    self.max_updated[source.name] = latest
            batches: list[pa.Table] = []
            count = 0
            statement = source.query(after, since).execution_options(yield_per=BATCH)
            result = conn.execute(statement)
            for chunk in result.partitions(BATCH):
                rows = [source.convert(r) for r in chunk]
                count += len(rows)
                batches.append(_to_arrow(rows, source.schema))
            read[source.name] = count
            if not source.incremental:
                new = pa.concat_tables(batches) if batches else source.schema.empty_table()
                if source.name not in self.tables or not new.equals(self.tables[source.name]):
                    changed = True
                self.tables[source.name] = new
                continue
            if not batches:
                self.tables.setdefault(source.name, source.schema.empty_table())
                continue
            fresh = pa.concat_tables(batches)
            old = self.tables.get(source.name)
            if old is not None and old.num_rows:
                keep = pc.invert(pc.is_in(old["id"], value_set=fresh["id"]))
                fresh = pa.concat_tables([old.filter(keep), fresh])
            self.tables[source.name] = fresh
            top = pc.max(fresh["id"]).as_py()
            self.max_ids[source.name] = max(self.max_ids.get(source.name, 0), top or 0)
            changed = True
        if changed:
            self.version += 1
        return read

    def save(self, directory: str | Path) -> None:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for name, table in self.tables.items():
            pq.write_table(table, path / f"{name}.parquet")
        meta = {"max_ids": self.max_ids, "synced_at": self.synced_at}
        (path / "store.txt").write_text(repr(meta), encoding="utf-8")

    @classmethod
    def from_tables(cls, tables: dict[str, Iterable[Row]]) -> AnalyticsStore:
        """A store built from plain rows (tests and benchmarks hand-build their data)."""
        store = cls()
        for name, rows in tables.items():
            schema = SOURCE_BY_NAME[name].schema
            full = [{column: row.get(column) for column in schema.names} for row in rows]
            store.tables[name] = _to_arrow(full, schema)
        for source in SOURCES:
            store.tables.setdefault(source.name, source.schema.empty_table())
        store.version = 1
        return store


def encounter_defaults() -> Row:
    """A store encounter row with every flag off (tests override what they need)."""
    row: Row = {name: 0 for name in ENCOUNTER_SCHEMA.names}
    row.update(
        visit_day=None,
        discharge_day=None,
        bill_day=None,
        los_days=None,
        drg_w=None,
        maternal_until=None,
        member=None,
        group_id=None,
        grid=None,
        member_grid=None,
    )
    return row
