"""Capacity decisions as plain functions (no database)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

# How long a $hold keeps a slot for the caller before anyone may book it again. Technical,
# not a plan's number: long enough to fill in the referral form's last step.
HOLD_MINUTES = 10

# Levels whose staff may book reserved capacity: primary members (基层医疗卫生机构, incl.
# village clinics) (001 §三(三)1; 002 §四(三)1). Family-doctor teams work from these members.
PRIMARY_LEVELS = frozenset({"primary", "village"})

# Admission-queue priorities (001 §三(三)1 “经基层转诊的签约居民可优先住院”).
PRIORITY_REFERRED_CONTRACTED = 2
PRIORITY_REFERRED = 1
PRIORITY_ROUTINE = 0


def reserved_count(total: int, share: float | None) -> int:
    """How many of `total` slots or beds are reserved for primary care.

    Rounded up: the plans set a floor (002 §四(三)1 “至少 1/3 … 1/4”; 001 §三(三)1 “20%”), and
    a fraction of a slot would leave the share below it."""
    if total < 0:
        raise ValueError("total must not be negative")
    if not share:
        return 0
    # a tiny tolerance: 1/3 stored as 0.3333… times 3 must not round up to 2
    return min(total, math.ceil(total * share - 1e-9))


def may_use_reserved(level: str | None, *, family_doctor_team: bool = False) -> bool:
    """Reserved capacity is bookable only by primary members and family-doctor teams
    (001 §三(三)1 “向家庭医生签约服务团队或基层医疗卫生机构下沉”)."""
    return family_doctor_team or level in PRIMARY_LEVELS


def reserved_released(start_at: datetime, at: datetime, release_hours: float | None) -> bool:
    """True when an unused reserved slot has reached the release lead time and is offered to
    everyone (profile `capacity.reserved_release_hours_before`). No lead time: never released."""
    if release_hours is None:
        return False
    return at >= start_at - timedelta(hours=release_hours)


def admission_priority(*, via_referral: bool, contracted: bool) -> int:
    """Referred contracted residents first, then referred residents, then the rest
    (001 §三(三)1; 003 §二(五)17 预约转诊优先)."""
    if via_referral and contracted:
        return PRIORITY_REFERRED_CONTRACTED
    if via_referral:
        return PRIORITY_REFERRED
    return PRIORITY_ROUTINE
