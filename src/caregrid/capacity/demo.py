"""The demo city's capacity: outpatient schedules and slots of the lead and secondary
hospitals for the four weeks before the reference date and the two after it, with the
profile's reserved share (001 §三(三)1; 002 §四(三)1), past slots booked at realistic rates
(unused reserved slots released before the session), and bed pools per ward, in the pool since
the start of the record's activity year (the last complete calendar year). Bulk inserts;
deterministic for the seed."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from caregrid.capacity import rules
from caregrid.capacity.models import Appointment, Bed, BedPool, Registration, Schedule, Slot
from caregrid.capacity.service import policy
from caregrid.core.clock import SHANGHAI
from caregrid.core.db import insert_returning_ids
from caregrid.registry import service as registry
from caregrid.registry.demo import Structure
from caregrid.registry.models import Department

PAST_DAYS = 28
FUTURE_DAYS = 14
SLOTS_PER_DAY = 20  # 08:00-11:20 every 10 minutes
DEPARTMENTS = {"tertiary": 4, "secondary": 2}
FEE_FEN = {"tertiary": 1500, "secondary": 800}  # 普通门诊诊察费, typical public tariff
GENERAL_BOOKED = 0.85
RESERVED_USED = 0.60  # by primary care; the rest is released and partly booked by others
RELEASED_BOOKED = 0.50
WARDS = 3
# Clinics people are referred to, in order of preference (a TCM hospital falls back on its own
# clinical departments); service departments have no outpatient clinic.
PREFERRED = (
    "心血管内科", "内分泌科", "神经内科", "呼吸与危重症医学科", "普外科", "骨科", "儿科", "妇产科",
    "消化内科", "肾内科", "全科医学科", "中医科", "康复医学科",
)  # fmt: skip
NO_CLINIC = ("急诊", "重症", "麻醉", "药学", "营养", "检验", "影像", "超声", "心电", "病理")
BEDS_PER_WARD = 40


@dataclass
class CapacityReport:
    schedules: int = 0
    slots: int = 0
    reserved: int = 0
    appointments: int = 0
    bed_pools: int = 0
    beds: int = 0


def build_capacity(
    session: Session,
    rng: random.Random,
    structure: Structure,
    *,
    reference_date: date,
    residents_by_group: Mapping[int, Sequence[int]],
    primary_by_group: Mapping[int, Sequence[int]],
) -> CapacityReport:
    report = CapacityReport()
    cp = policy(session)
    hospitals = [
        i
        for i, level in structure.institution_level.items()
        if level in DEPARTMENTS and structure.institution_group.get(i) is not None
    ]
    at = datetime.combine(reference_date, time(0), SHANGHAI)
    per_day = rules.reserved_count(SLOTS_PER_DAY, cp.outpatient_share)
    for inst_id in sorted(hospitals):
        level = structure.institution_level[inst_id]
        group_id = structure.institution_group[inst_id]
        assert group_id is not None
        departments = clinics(session, inst_id)[: DEPARTMENTS[level]]
        for dept in departments:
            schedule = Schedule(
                group_id=group_id,
                institution_id=inst_id,
                department_id=dept.id,
                name=f"{dept.name}门诊",
                registration_fee_fen=FEE_FEN[level],
            )
            session.add(schedule)
            session.flush()
            report.schedules += 1
            slot_rows = []
            for offset in range(-PAST_DAYS, FUTURE_DAYS):
                day = reference_date + timedelta(days=offset)
                if day.weekday() >= 5:
                    continue
                reserved = _spread(SLOTS_PER_DAY, per_day)
                for k in range(SLOTS_PER_DAY):
                    start = datetime.combine(day, time(8), SHANGHAI) + timedelta(minutes=10 * k)
                    slot_rows.append(
                        {
                            "schedule_id": schedule.id,
                            "group_id": group_id,
                            "institution_id": inst_id,
                            "department_id": dept.id,
                            "start_at": start.astimezone(UTC),
                            "end_at": (start + timedelta(minutes=10)).astimezone(UTC),
                            "pool": "reserved" if k in reserved else "general",
                            "reserved_offered": k in reserved,
                            "released_at": None,
                            "status": "free",
                        }
                    )
            _book_past(
                session,
                rng,
                slot_rows,
                at,
                cp.release_hours,
                schedule,
                report,
                residents_by_group.get(group_id, ()),
                primary_by_group.get(group_id, ()),
            )
    for inst_id in sorted(i for i in hospitals if structure.institution_level[i] == "tertiary"):
        report_beds(
            session,
            inst_id,
            structure.institution_group[inst_id],
            cp.bed_share,
            report,
            since=datetime(reference_date.year - 1, 1, 1, tzinfo=SHANGHAI),
        )
    session.flush()
    return report


def clinics(session: Session, inst_id: int) -> list[Department]:
    """The hospital's clinical departments, preferred ones first."""
    rank = {name: i for i, name in enumerate(PREFERRED)}
    clinical = [
        d
        for d in registry.departments_of(session, inst_id)
        if not any(word in d.name for word in NO_CLINIC)
    ]
    return sorted(clinical, key=lambda d: (rank.get(d.name, len(rank)), d.id))


def _spread(total: int, count: int) -> set[int]:
    return {int(i * total / count) for i in range(count)} if count else set()


def _book_past(
    session: Session,
    rng: random.Random,
    rows: list[dict[str, object]],
    at: datetime,
    release_hours: float | None,
    schedule: Schedule,
    report: CapacityReport,
    residents: Sequence[int],
    primary: Sequence[int],
) -> None:
    """Past slots: general ones mostly booked, reserved ones used by primary care or released
    before the session (then sometimes booked by anyone)."""
    bookings: list[tuple[int, str, bool]] = []  # (row index, pool used, by primary)
    for i, row in enumerate(rows):
        start = row["start_at"]
        assert isinstance(start, datetime)
        if start >= at or not residents:
            continue
        if row["pool"] == "reserved":
            if rng.random() < RESERVED_USED and primary:
                bookings.append((i, "reserved", True))
            else:
                row["pool"] = "general"
                row["released_at"] = start - timedelta(hours=release_hours or 24)
                if rng.random() < RELEASED_BOOKED:
                    bookings.append((i, "general", False))
        elif rng.random() < GENERAL_BOOKED:
            bookings.append((i, "general", False))
    for i, _, _ in bookings:
        rows[i]["status"] = "booked"
    ids = insert_returning_ids(session, Slot, rows)
    report.slots += len(rows)
    report.reserved += sum(1 for r in rows if r["reserved_offered"])
    if not bookings:
        return
    reg_rows = []
    for i, _, _ in bookings:
        start = rows[i]["start_at"]
        assert isinstance(start, datetime)
        reg_rows.append(
            {
                "resident_id": rng.choice(residents),
                "group_id": schedule.group_id,
                "institution_id": schedule.institution_id,
                "department_id": schedule.department_id,
                "fee_fen": schedule.registration_fee_fen,
                "carried": False,
                "registered_at": start - timedelta(days=rng.randint(1, 6)),
            }
        )
    reg_ids = insert_returning_ids(session, Registration, reg_rows)
    appt_rows = []
    for (i, pool, by_primary), reg_id, reg in zip(bookings, reg_ids, reg_rows, strict=True):
        appt_rows.append(
            {
                "slot_id": ids[i],
                "active_slot_id": ids[i],
                "resident_id": reg["resident_id"],
                "group_id": schedule.group_id,
                "institution_id": schedule.institution_id,
                "pool": pool,
                "status": "arrived" if rng.random() < 0.93 else "noshow",
                "booked_by_institution_id": rng.choice(primary) if by_primary else None,
                "registration_id": reg_id,
                "via_referral": False,
                "booked_at": reg["registered_at"],
            }
        )
    session.execute(insert(Appointment), appt_rows)
    report.appointments += len(appt_rows)


def report_beds(
    session: Session,
    inst_id: int,
    group_id: int | None,
    share: float | None,
    report: CapacityReport,
    *,
    since: datetime,
) -> None:
    """Wards of a lead hospital with their reserved beds (001 §三(三)1; 002 §四(三)1), pooled
    since `since`."""
    departments = clinics(session, inst_id)[:WARDS]
    for k, dept in enumerate(departments, start=1):
        pool = BedPool(
            group_id=group_id,
            institution_id=inst_id,
            department_id=dept.id,
            ward=f"{dept.name}病区",
            created_at=since,
        )
        session.add(pool)
        session.flush()
        reserved = _spread(BEDS_PER_WARD, rules.reserved_count(BEDS_PER_WARD, share))
        session.execute(
            insert(Bed),
            [
                {
                    "bed_pool_id": pool.id,
                    "label": f"{k}-{i + 1:02d}床",
                    "pool": "reserved" if i in reserved else "general",
                    "status": "free",
                }
                for i in range(BEDS_PER_WARD)
            ],
        )
        report.bed_pools += 1
        report.beds += BEDS_PER_WARD


def upcoming_reserved(session: Session, institution_id: int) -> int:
    """How many future reserved slots a hospital offers (for the demo's report and tests)."""
    return len(
        session.scalars(
            select(Slot.id).where(
                Slot.institution_id == institution_id,
                Slot.pool == "reserved",
                Slot.status == "free",
            )
        ).all()
    )
