"""Referral monitoring (转诊监测制度, 002 §四(三)1): upward and downward counts by month and by
member, the downward share, time to accept, the closed-loop rate, the coordinator's lists of
overdue, unanswered and unclosed referrals, and reserved capacity offered vs used. Service
functions: the indicators capability reads them."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from caregrid.capacity import service as capacity
from caregrid.core.actor import Actor
from caregrid.core.clock import local, now
from caregrid.core.errors import Forbidden
from caregrid.referral.models import Referral

MONITOR_ROLES = frozenset({"coordinator", "group_manager", "admin", "system"})
# Arrived but no feedback after this long: the loop is open (the national standard asks the
# primary doctor to follow a referral up within two weeks: 规范第三版 “2周内主动随访”).
UNCLOSED_AFTER = timedelta(days=14)


@dataclass
class MonthRow:
    month: str
    up: int = 0
    down: int = 0

    @property
    def down_share(self) -> float | None:
        total = self.up + self.down
        return None if total == 0 else round(self.down / total, 4)


@dataclass
class MemberRow:
    institution_id: int
    up_sent: int = 0
    up_received: int = 0
    down_sent: int = 0
    down_received: int = 0


@dataclass
class Summary:
    group_id: int | None
    up: int
    down: int
    down_share: float | None
    accepted: int
    rejected: int
    expired: int
    closed_loop_rate: float | None
    median_hours_to_accept: float | None
    months: list[MonthRow]
    members: list[MemberRow]
    overdue_ids: list[int]
    unanswered_ids: list[int]
    unclosed_ids: list[int]
    escalated_ids: list[int]
    reserved: list[capacity.ReservedUse] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["months"] = [
            {"month": m.month, "up": m.up, "down": m.down, "down_share": m.down_share}
            for m in self.months
        ]
        return data


def _group_of(actor: Actor, group_id: int | None) -> int | None:
    if actor.role not in MONITOR_ROLES:
        raise Forbidden("仅转诊协调员、集团管理者可以查看转诊监测")
    if actor.role in ("coordinator", "group_manager"):
        return actor.group_id
    return group_id


def summary(
    session: Session,
    actor: Actor,
    *,
    group_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    at: datetime | None = None,
) -> Summary:
    """Everything the coordinator board shows, for the caller's group.

    Closed-loop rate = completed (feedback returned) ÷ referrals accepted (incl. later states);
    time to accept = hours from submission to acceptance (median); downward share = down ÷
    (up + down). Referrals outside the group count as upward."""
    group = _group_of(actor, group_id)
    at = at or now()
    stmt = select(
        Referral.id,
        Referral.direction,
        Referral.status,
        Referral.from_institution_id,
        Referral.to_institution_id,
        Referral.created_at,
        Referral.submitted_at,
        Referral.accepted_at,
        Referral.due_at,
        Referral.arrived_at,
    ).where(Referral.status != "draft")
    if group is not None:
        stmt = stmt.where(Referral.group_id == group)
    if since is not None:
        stmt = stmt.where(Referral.created_at >= since)
    if until is not None:
        stmt = stmt.where(Referral.created_at < until)
    months: dict[str, MonthRow] = {}
    members: dict[int, MemberRow] = {}
    counts: defaultdict[str, int] = defaultdict(int)
    waits: list[float] = []
    overdue, unanswered, unclosed, escalated = [], [], [], []
    accepted_or_later = completed = 0
    for row in session.execute(stmt.order_by(Referral.created_at)).all():
        counts[row.direction] += 1
        counts[row.status] += 1
        key = local(row.created_at).strftime("%Y-%m")
        month = months.setdefault(key, MonthRow(key))
        sender = members.setdefault(row.from_institution_id, MemberRow(row.from_institution_id))
        receiver = (
            members.setdefault(row.to_institution_id, MemberRow(row.to_institution_id))
            if row.to_institution_id
            else None
        )
        if row.direction == "up":
            month.up += 1
            sender.up_sent += 1
            if receiver:
                receiver.up_received += 1
        else:
            month.down += 1
            sender.down_sent += 1
            if receiver:
                receiver.down_received += 1
        if row.accepted_at and row.submitted_at:
            waits.append((row.accepted_at - row.submitted_at).total_seconds() / 3600)
        if row.status in ("accepted", "scheduled", "arrived", "completed"):
            accepted_or_later += 1
            completed += row.status == "completed"
        if row.status == "submitted":
            unanswered.append(row.id)
            if row.due_at and row.due_at < at:
                overdue.append(row.id)
        if row.status == "expired":
            escalated.append(row.id)
        if row.status == "arrived" and row.arrived_at and at - row.arrived_at > UNCLOSED_AFTER:
            unclosed.append(row.id)
    total = counts["up"] + counts["down"]
    return Summary(
        group_id=group,
        up=counts["up"],
        down=counts["down"],
        down_share=None if total == 0 else round(counts["down"] / total, 4),
        accepted=accepted_or_later,
        rejected=counts["rejected"],
        expired=counts["expired"],
        closed_loop_rate=None
        if accepted_or_later == 0
        else round(completed / accepted_or_later, 4),
        median_hours_to_accept=round(statistics.median(waits), 1) if waits else None,
        months=[months[k] for k in sorted(months)],
        members=sorted(members.values(), key=lambda m: m.institution_id),
        overdue_ids=overdue,
        unanswered_ids=unanswered,
        unclosed_ids=unclosed,
        escalated_ids=escalated,
        reserved=capacity.reserved_usage(session, group_id=group, since=since, until=until),
    )
