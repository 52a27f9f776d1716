"""The demo city's referrals: a year of upward and downward referrals consistent with the
shared record (an upward referral leads to the encounter that exists at the target; a
downward referral follows an inpatient stay at a lead or secondary hospital), with realistic
outcomes: most closed with feedback, some rejected, expired (unanswered within the profile's
limit and escalated), cancelled, unclosed, and a few still unanswered and overdue; a small
share goes outside the group (专科联盟 / provincial hospital). Bulk inserts, deterministic for
the seed.

Proportions (provisional, for a meaningful demo): about 6 % of the outpatient visits and 30 %
of the admissions at secondary/tertiary members of residents kept by a primary member arrive
through an upward referral; 18 % of the discharges are referred down."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from caregrid.core.clock import SHANGHAI
from caregrid.core.db import insert_returning_ids
from caregrid.record import demo as record_demo
from caregrid.referral import rules
from caregrid.referral.models import CareEpisode, Referral, ReferralEvent
from caregrid.referral.service import limit_hours
from caregrid.registry import icd10
from caregrid.registry import service as registry

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


def _hours(rng: random.Random, median: float) -> timedelta:
    return timedelta(hours=max(0.2, rng.lognormvariate(math.log(median), 0.8)))


def generate_referrals(session: Session, rng: random.Random, *, year: int) -> ReferralReport:
    report = ReferralReport()
    limit = timedelta(hours=limit_hours(session))
    primary_ranges = [
        icd10.parse_range(e.code_range) for e in registry.catalog_entries(session, level="primary")
    ]
    candidates = record_demo.referral_candidates(session, year=year)
    rows: list[dict[str, Any]] = []
    events: list[list[tuple[str, str | None, str, datetime, str | None]]] = []
    up_of_encounter: dict[int, int] = {}  # encounter id -> index of its upward referral
    # a visit early in January was referred in January, not late in the previous year
    year_start = datetime(year, 1, 1, tzinfo=SHANGHAI)

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
            created = max(year_start, c.started_at - timedelta(hours=rng.uniform(4, 96)))
            if not covered(c.diagnosis_code):
                reason = "outside_catalogue"
            else:
                reason = "chronic_uncontrolled" if rng.random() < 0.5 else "doctor"
            row = _row(c, "up", c.home_institution_id, c.institution_id, created, reason, limit)
            row["reason_text"] = "病情需上级医院进一步诊治" if reason == "doctor" else None
            history = _outcome(rng, row, created, limit, c.started_at, c.ended_at, report)
            if row["status"] in ("arrived", "completed"):
                row["arrival_encounter_id"] = c.encounter_id
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
    if not rows:
        return report
    _insert(session, rows, events)
    return report


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
