"""The demo city's referrals: a year of upward and downward referrals consistent with the
shared record (an upward referral leads to the encounter that exists at the target; a
downward referral follows an inpatient stay at a lead or secondary hospital), with realistic
outcomes: most closed with feedback, some rejected, expired (unanswered within the profile's
limit and escalated), cancelled, unclosed, and a few still unanswered and overdue; a small
share goes outside the group (专科联盟 / provincial hospital). Bulk inserts, deterministic for
the seed.

Referred contracted residents are flagged priority (001 §三(三)1 “经基层转诊的签约居民可优先
就诊、优先检查、优先住院”) when a family-doctor contract covered the day of the referral.
Inpatient referrals that led to a stay at a lead hospital went through its ward's admission
queue: the request (with referral priority) and the bed stay match the inpatient encounter of
the shared record (admitted when it started, discharged when it ended; a bed holds one patient
at a time). On the reference date a few inpatient referrals from primary care are waiting for
an answer and a bed, queued ahead of the hospitals' own routine admissions.

Proportions (provisional, for a meaningful demo): about 6 % of the outpatient visits and 30 %
of the admissions at secondary/tertiary members of residents kept by a primary member arrive
through an upward referral; 18 % of the discharges are referred down."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from caregrid.capacity import rules as capacity_rules
from caregrid.capacity.models import AdmissionRequest, Bed, BedPool, BedStay
from caregrid.core.clock import SHANGHAI
from caregrid.core.db import insert_returning_ids
from caregrid.familydoctor.models import Contract
from caregrid.profiles import service as profiles
from caregrid.record import demo as record_demo
from caregrid.referral import rules
from caregrid.referral.models import CareEpisode, Referral, ReferralEvent
from caregrid.referral.service import limit_hours
from caregrid.registry import icd10
from caregrid.registry import service as registry
from caregrid.registry.models import Institution, Resident

UP_OUTPATIENT = 0.06
UP_INPATIENT = 0.30
DOWN_AFTER_STAY = 0.18
EXTERNAL = 0.02
DOWN_MIX = (
    ("postoperative_recovery", 0.35),
    ("acute_recovery", 0.35),
    ("critical_stable", 0.10),
    ("stable_chronic", 0.20),
)
REJECT_REASONS = (
    "本科室床位已满，建议转二级医院",
    "病情可在基层处理，已电话指导",
    "资料不全，请补充检查结果",
)
FEEDBACK = (
    "已明确诊断并调整治疗方案，建议基层继续随访",
    "完成检查，未见明显异常，回基层管理",
    "住院治疗后病情稳定，详见出院小结",
)


@dataclass
class ReferralReport:
    up: int = 0
    down: int = 0
    external: int = 0
    completed: int = 0
    rejected: int = 0
    expired: int = 0
    unclosed: int = 0
    overdue: int = 0
    priority: int = 0
    admitted_via_queue: int = 0
    waiting_for_bed: int = 0

    def lines(self) -> list[str]:
        return [
            f"双向转诊 {self.up + self.down:,} 件（上转 {self.up:,}，下转 {self.down:,}，"
            f"集团外 {self.external:,}），签约居民优先 {self.priority:,} 件",
            f"经入院队列住院 {self.admitted_via_queue:,} 人次，"
            f"当前等候床位的转诊患者 {self.waiting_for_bed:,} 人",
        ]


def _hours(rng: random.Random, median: float) -> timedelta:
    return timedelta(hours=max(0.2, rng.lognormvariate(math.log(median), 0.8)))


# Inpatient referrals waiting on the reference date, per lead hospital with wards, and the
# hospital's own routine admissions queued before them.
PENDING_PER_HOSPITAL = 4
ROUTINE_PER_WARD = 2
PENDING_DIAGNOSES = (
    ("I21.0", "急性前壁心肌梗死"),
    ("I63.9", "脑梗死"),
    ("I50.9", "心力衰竭"),
    ("J44.1", "慢性阻塞性肺疾病急性加重"),
    ("K80.0", "胆囊结石伴急性胆囊炎"),
)


def generate_referrals(
    session: Session, rng: random.Random, *, year: int, reference_date: date | None = None
) -> ReferralReport:
    report = ReferralReport()
    limit = timedelta(hours=limit_hours(session))
    primary_ranges = [
        icd10.parse_range(e.code_range) for e in registry.catalog_entries(session, level="primary")
    ]
    candidates = record_demo.referral_candidates(session, year=year)
    # a referral written before the year opened (for a visit on its first days) would fall
    # outside the demo's year of referrals: it is written when the year opens instead
    year_opens = datetime(year, 1, 1, tzinfo=SHANGHAI)
    rows: list[dict[str, Any]] = []
    events: list[list[tuple[str, str | None, str, datetime, str | None]]] = []
    up_of_encounter: dict[int, int] = {}  # encounter id -> index of its upward referral

    def covered(code: str | None) -> bool:
        if not code:
            return False
        try:
            return icd10.range_covers_any(primary_ranges, code)
        except Exception:
            return False

    for c in candidates:
        p = UP_INPATIENT if c.encounter_class == "inpatient" else UP_OUTPATIENT
        if c.encounter_class != "emergency" and rng.random() < p:
            created = max(c.started_at - timedelta(hours=rng.uniform(4, 96)), year_opens)
            if not covered(c.diagnosis_code):
                reason = "outside_catalogue"
            else:
                reason = "chronic_uncontrolled" if rng.random() < 0.5 else "doctor"
            row = _row(c, "up", c.home_institution_id, c.institution_id, created, reason, limit)
            row["reason_text"] = "病情需上级医院进一步诊治" if reason == "doctor" else None
            history = _outcome(rng, row, created, limit, c.started_at, c.ended_at, report)
            if row["status"] in ("arrived", "completed"):
                row["arrival_encounter_id"] = c.encounter_id
                row["_ended_at"] = c.ended_at  # for the bed stay (arrived_at is its start)
                up_of_encounter[c.encounter_id] = len(rows)
            rows.append(row)
            events.append(history)
            report.up += 1
        if c.encounter_class == "inpatient" and c.ended_at is not None:
            if rng.random() < EXTERNAL:
                created = c.started_at + timedelta(hours=rng.uniform(12, 72))
                row = _row(c, "up", c.institution_id, None, created, "doctor", limit)
                row.update(
                    external_institution="省立医院（专科联盟）",
                    external_kind="specialty_alliance",
                    reason_text="需省级专科联盟会诊治疗",
                    status="completed",
                    completed_at=created + timedelta(days=rng.randint(3, 20)),
                    feedback="省级医院治疗后返回",
                )
                row["closed_at"] = row["completed_at"]
                rows.append(row)
                events.append(
                    [
                        ("create", None, "draft", created, None),
                        ("submit", "draft", "submitted", created, None),
                        ("complete", "submitted", "completed", row["completed_at"], None),
                    ]
                )
                report.external += 1
                report.up += 1
            elif rng.random() < DOWN_AFTER_STAY:
                category = _pick(rng, DOWN_MIX)
                created = c.ended_at - timedelta(hours=rng.uniform(2, 24))
                row = _row(
                    c, "down", c.institution_id, c.home_institution_id, created, category, limit
                )
                row["care_plan"] = f"{rules.DOWN_CATEGORIES[category]}：继续药物治疗，2 周内随访"
                row["to_department_id"] = None
                parent = up_of_encounter.get(c.encounter_id)
                if parent is not None:
                    row["parent_index"] = parent
                arrival = c.ended_at + timedelta(days=rng.randint(1, 3))
                history = _outcome(rng, row, created, limit, arrival, arrival, report)
                rows.append(row)
                events.append(history)
                report.down += 1
    if reference_date is not None:
        _pending_inpatient(session, rng, rows, events, reference_date, limit, covered, report)
    if not rows:
        return report
    _flag_priority(session, rows, report)
    _admissions(session, rows, report)
    for row in rows:
        row.pop("_ended_at", None)
        row.pop("_pending", None)
    _insert(session, rows, events)
    return report


def _flag_priority(session: Session, rows: list[dict[str, Any]], report: ReferralReport) -> None:
    """A referral is `contracted` when a family-doctor contract covered its day; one from a
    primary member then has priority (001 §三(三)1; profiles that do not tie priority to a
    contract give it to every referral from primary care)."""
    contracts: dict[int, list[tuple[date, date]]] = defaultdict(list)
    wanted = {r["resident_id"] for r in rows}
    for resident_id, start, end, ended in session.execute(
        select(Contract.resident_id, Contract.start_date, Contract.end_date, Contract.ended_on)
    ):
        if resident_id in wanted:
            contracts[resident_id].append((start, ended or end))
    primary = set(
        session.scalars(select(Institution.id).where(Institution.level.in_(("primary", "village"))))
    )
    requires_contract = bool(
        profiles.active_profile(session).value("capacity.priority_requires_contract", True)
    )
    for row in rows:
        day = row["created_at"].astimezone(SHANGHAI).date()
        row["contracted"] = any(s <= day < e for s, e in contracts.get(row["resident_id"], ()))
        row["priority"] = rules.referral_priority(
            contracted=row["contracted"],
            from_primary=row["from_institution_id"] in primary,
            requires_contract=requires_contract,
        )
        report.priority += row["priority"] == "priority"


def _wards(session: Session) -> dict[int, list[tuple[int, int | None]]]:
    """Lead hospitals' wards: institution -> [(bed pool, department)]."""
    wards: dict[int, list[tuple[int, int | None]]] = defaultdict(list)
    for pool_id, inst_id, dept_id in session.execute(
        select(BedPool.id, BedPool.institution_id, BedPool.department_id).order_by(BedPool.id)
    ):
        wards[inst_id].append((pool_id, dept_id))
    return wards


def _ward_for(wards: list[tuple[int, int | None]], department_id: int | None) -> int:
    return next((p for p, d in wards if d == department_id), wards[0][0])


def _admissions(session: Session, rows: list[dict[str, Any]], report: ReferralReport) -> None:
    """Upward inpatient referrals that led to a stay at a hospital with wards were admitted
    through the ward's queue: an admission request with referral priority (001 §三(三)1) and a
    bed stay over the encounter's dates, on a bed free for the whole stay (reserved beds first:
    the patient comes from primary care). Referrals still waiting get a waiting request."""
    wards = _wards(session)
    if not wards:
        return
    beds: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for bed_id, pool_id, pool in session.execute(
        select(Bed.id, Bed.bed_pool_id, Bed.pool).order_by(Bed.id)
    ):
        beds[pool_id].append((bed_id, pool))
    for pool_beds in beds.values():
        pool_beds.sort(key=lambda b: (b[1] != "reserved", b[0]))
    free_from: dict[int, datetime] = {}
    requests: list[dict[str, Any]] = []
    stays: list[dict[str, Any]] = []
    owners: list[int] = []  # row index of each request
    stay_of: dict[int, int] = {}  # request index -> stay index
    admitted = [
        i
        for i, r in enumerate(rows)
        if r["care_type"] == "inpatient"
        and r["direction"] == "up"
        and r.get("to_institution_id") in wards
        and (r.get("arrival_encounter_id") or r.get("_pending"))
    ]
    for i in sorted(admitted, key=lambda i: rows[i].get("arrived_at") or rows[i]["created_at"]):
        row = rows[i]
        pool_id = _ward_for(wards[row["to_institution_id"]], row.get("to_department_id"))
        request = {
            "bed_pool_id": pool_id,
            "resident_id": row["resident_id"],
            "group_id": row["group_id"],
            "priority": capacity_rules.admission_priority(
                via_referral=True, contracted=row["contracted"]
            ),
            "via_referral": True,
            "from_primary": True,
            "status": "waiting",
            "requested_at": row["created_at"],
            "admitted_at": None,
        }
        if not row.get("_pending"):
            start, end = row["arrived_at"], row.get("_ended_at")
            bed = next((b for b, _ in beds[pool_id] if free_from.get(b, start) <= start), None)
            if end is None or bed is None:
                continue  # the stay went elsewhere in the hospital: no queue record
            free_from[bed] = end
            request.update(status="admitted", admitted_at=start)
            stay_of[len(requests)] = len(stays)
            stays.append(
                {
                    "bed_id": bed,
                    "active_bed_id": None,
                    "resident_id": row["resident_id"],
                    "group_id": row["group_id"],
                    "pool": dict(beds[pool_id])[bed],
                    "admitted_at": start,
                    "discharged_at": end,
                }
            )
            report.admitted_via_queue += 1
        else:
            report.waiting_for_bed += 1
        requests.append(request)
        owners.append(i)
    ids = insert_returning_ids(session, AdmissionRequest, requests)
    for k, (request_id, i) in enumerate(zip(ids, owners, strict=True)):
        rows[i]["admission_request_id"] = request_id
        if k in stay_of:
            stays[stay_of[k]]["admission_request_id"] = request_id
    if stays:
        session.execute(insert(BedStay), stays)


def _pending_inpatient(
    session: Session,
    rng: random.Random,
    rows: list[dict[str, Any]],
    events: list[list[tuple[str, str | None, str, datetime, str | None]]],
    reference_date: date,
    limit: timedelta,
    covered: Any,
    report: ReferralReport,
) -> None:
    """On the reference date: inpatient referrals from primary care submitted in the last
    hours (not yet due) to each lead hospital with wards, and the hospital's own routine
    admissions queued a day or two earlier (no referral, no priority)."""
    midnight = datetime.combine(reference_date, time(0), SHANGHAI)
    wards = _wards(session)
    hospitals = session.execute(
        select(Institution.id, Institution.group_id)
        .where(Institution.id.in_(list(wards)))
        .order_by(Institution.id)
    ).all()
    routine: list[dict[str, Any]] = []
    for inst_id, group_id in hospitals:
        kept = session.execute(
            select(Resident.id, Resident.home_institution_id)
            .join(Institution, Institution.id == Resident.home_institution_id)
            .where(
                Institution.group_id == group_id,
                Institution.level == "primary",
                Resident.deceased_on.is_(None),
            )
            .order_by(Resident.id)
        ).all()
        if len(kept) < PENDING_PER_HOSPITAL + ROUTINE_PER_WARD * len(wards[inst_id]):
            continue
        chosen = rng.sample(kept, PENDING_PER_HOSPITAL + ROUTINE_PER_WARD * len(wards[inst_id]))
        for resident_id, home in chosen[:PENDING_PER_HOSPITAL]:
            code, name = rng.choice(PENDING_DIAGNOSES)
            created = midnight - timedelta(hours=rng.uniform(1, limit.total_seconds() / 3600 * 0.5))
            _pool, dept_id = rng.choice(wards[inst_id])
            outside = not covered(code)
            rows.append(
                {
                    "group_id": group_id,
                    "direction": "up",
                    "status": "submitted",
                    "resident_id": resident_id,
                    "from_institution_id": home,
                    "to_institution_id": inst_id,
                    "to_department_id": dept_id,
                    "care_type": "inpatient",
                    "diagnosis_code": code,
                    "diagnosis_name": name,
                    "reason_code": "outside_catalogue" if outside else "doctor",
                    "reason_text": None if outside else "病情需住院进一步诊治",
                    "summary": f"基层首诊：{name}，建议住院治疗",
                    "priority": "routine",
                    "contracted": False,
                    "created_at": created,
                    "submitted_at": created,
                    "due_at": created + limit,
                    "_pending": True,
                }
            )
            events.append(
                [
                    ("create", None, "draft", created, None),
                    ("submit", "draft", "submitted", created, None),
                ]
            )
            report.up += 1
        others = iter(chosen[PENDING_PER_HOSPITAL:])
        for pool_id, _dept in wards[inst_id]:
            for _ in range(ROUTINE_PER_WARD):
                resident_id, _home = next(others)
                routine.append(
                    {
                        "bed_pool_id": pool_id,
                        "resident_id": resident_id,
                        "group_id": group_id,
                        "priority": capacity_rules.PRIORITY_ROUTINE,
                        "via_referral": False,
                        "from_primary": False,
                        "status": "waiting",
                        "requested_at": midnight - timedelta(hours=rng.uniform(30, 60)),
                    }
                )
    if routine:
        session.execute(insert(AdmissionRequest), routine)


def _row(
    c: record_demo.ReferralCandidate,
    direction: str,
    source: int,
    target: int | None,
    created: datetime,
    reason: str,
    limit: timedelta,
) -> dict[str, Any]:
    return {
        "group_id": c.group_id,
        "direction": direction,
        "status": "submitted",
        "resident_id": c.resident_id,
        "from_institution_id": source,
        "to_institution_id": target,
        "to_department_id": c.department_id,
        "care_type": "inpatient" if c.encounter_class == "inpatient" else "outpatient",
        "diagnosis_code": c.diagnosis_code,
        "diagnosis_name": c.diagnosis_name,
        "reason_code": reason,
        "priority": "routine",
        "contracted": False,
        "created_at": created,
        "submitted_at": created,
        "due_at": created + limit,
    }


def _pick(rng: random.Random, mix: tuple[tuple[str, float], ...]) -> str:
    x = rng.random()
    for value, share in mix:
        x -= share
        if x < 0:
            return value
    return mix[-1][0]


def _outcome(
    rng: random.Random,
    row: dict[str, Any],
    created: datetime,
    limit: timedelta,
    arrival: datetime,
    end: datetime | None,
    report: ReferralReport,
) -> list[tuple[str, str | None, str, datetime, str | None]]:
    """Fill the referral's outcome and return its history."""
    history: list[tuple[str, str | None, str, datetime, str | None]] = [
        ("create", None, "draft", created, None),
        ("submit", "draft", "submitted", created, None),
    ]
    x = rng.random()
    if x < 0.04:
        at = created + _hours(rng, 8)
        reason = rng.choice(REJECT_REASONS)
        row.update(status="rejected", rejection_reason=reason, closed_at=at)
        history.append(("reject", "submitted", "rejected", at, reason))
        report.rejected += 1
        return history
    if x < 0.07:
        at = created + limit
        row.update(status="expired", escalated_at=at, closed_at=at)
        history.append(("expire", "submitted", "expired", at, "超过受理时限，转交转诊协调员"))
        report.expired += 1
        return history
    if x < 0.10 and created.month == 12:
        report.overdue += 1  # never answered: on the coordinator's overdue list
        return history
    accepted = min(created + _hours(rng, 6), arrival - timedelta(minutes=30))
    accepted = max(accepted, created + timedelta(minutes=5))
    row.update(status="arrived", accepted_at=accepted, arrived_at=arrival)
    history += [
        ("accept", "submitted", "accepted", accepted, None),
        ("schedule", "accepted", "scheduled", accepted, None),
        ("arrive", "scheduled", "arrived", arrival, None),
    ]
    if x < 0.15:
        report.unclosed += 1  # arrived, no feedback yet
        return history
    done = (end or arrival) + timedelta(hours=rng.uniform(2, 72))
    feedback = rng.choice(FEEDBACK)
    row.update(status="completed", completed_at=done, feedback=feedback, closed_at=done)
    history.append(("complete", "arrived", "completed", done, feedback))
    report.completed += 1
    return history


def _insert(
    session: Session,
    rows: list[dict[str, Any]],
    events: list[list[tuple[str, str | None, str, datetime, str | None]]],
) -> None:
    # Episodes: an inpatient referral inside the group opens one; its down-referral joins it
    # (004 §四(三)2 起付线连续计算).
    need = [
        i for i, r in enumerate(rows) if r["care_type"] == "inpatient" and r["to_institution_id"]
    ]
    own = [i for i in need if "parent_index" not in rows[i]]
    episode_rows = [
        {
            "resident_id": rows[i]["resident_id"],
            "group_id": rows[i]["group_id"],
            "opened_at": rows[i]["created_at"],
        }
        for i in own
    ]
    episode_ids = insert_returning_ids(session, CareEpisode, episode_rows)
    for i, eid in zip(own, episode_ids, strict=True):
        rows[i]["episode_id"] = eid
    parents: dict[int, int] = {}
    for i, row in enumerate(rows):
        parent = row.pop("parent_index", None)
        if parent is not None:
            parents[i] = parent
            row["episode_id"] = rows[parent].get("episode_id")
    # every row carries the same keys for one executemany
    keys = sorted({k for r in rows for k in r})
    ids = insert_returning_ids(session, Referral, [{k: r.get(k) for k in keys} for r in rows])
    if parents:  # ORM bulk UPDATE by primary key
        session.execute(
            update(Referral), [{"id": ids[i], "parent_id": ids[p]} for i, p in parents.items()]
        )
    session.execute(
        insert(ReferralEvent),
        [
            {
                "referral_id": rid,
                "action": action,
                "from_status": before,
                "to_status": after,
                "user_id": None,
                "username": "demo",
                "at": at,
                "note": note,
            }
            for rid, history in zip(ids, events, strict=True)
            for action, before, after, at, note in history
        ],
    )
