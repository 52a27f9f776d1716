"""Target status and trend: pure rules, no database.

Status of a value against a numeric target (the profile parameter's ``comparator``):
- **met** (达标): the comparison holds (``>=``, ``>``, ``<=``, ``<``; ``==`` within 1 % of
  the target, e.g. Linyi's 20 % reserved share: 19.8 %-20.2 %).
- **close** (接近): it does not hold, but the value is within `CLOSE_MARGIN` (5 %) of the
  target, relative to the target (e.g. target ≥ 65 %: 61.75 % and up is close).
- **missed** (未达标): otherwise.
- None when there is no value (zero denominator) or no numeric target.

Trend targets (``rising`` / ``falling``, e.g. Linyi's 基层就诊率 “逐年提升”) compare the
period with the previous period of the same length: moving the required way by more than
`FLAT_MARGIN` (1 % of the previous value) is met, within it is close, the other way missed.

Trend arrows for any indicator use the same comparison and the indicator's direction."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

Status = Literal["met", "close", "missed"]
STATUS_LABELS = {"met": "达标", "close": "接近", "missed": "未达标", None: "无数据"}
CLOSE_MARGIN = Decimal("0.05")
FLAT_MARGIN = Decimal("0.01")


def compare(value: Decimal, comparator: str, target: Decimal) -> bool:
    if comparator == ">=":
        return value >= target
    if comparator == ">":
        return value > target
    if comparator == "<=":
        return value <= target
    if comparator == "<":
        return value < target
    if comparator == "==":
        # an exact share (Linyi's 20 % of slots and beds): within 1 % of the target
        return abs(value - target) <= FLAT_MARGIN * abs(target)
    raise ValueError(f"unknown comparator {comparator!r}")


def target_status(value: Decimal | None, comparator: str | None, target: Decimal) -> Status | None:
    if value is None or comparator is None:
        return None
    if compare(value, comparator, target):
        return "met"
    if abs(value - target) <= CLOSE_MARGIN * abs(target):
        return "close"
    return "missed"


Movement = Literal["up", "down", "flat"]


def movement(current: Decimal | None, previous: Decimal | None) -> Movement | None:
    if current is None or previous is None:
        return None
    margin = FLAT_MARGIN * abs(previous)
    if current - previous > margin:
        return "up"
    if previous - current > margin:
        return "down"
    return "flat"


def trend_status(current: Decimal | None, previous: Decimal | None, wanted: str) -> Status | None:
    """Status of a ``rising`` / ``falling`` target."""
    moved = movement(current, previous)
    if moved is None:
        return None
    if moved == "flat":
        return "close"
    good = "up" if wanted == "rising" else "down"
    return "met" if moved == good else "missed"


def improving(moved: Movement | None, direction: str) -> bool | None:
    """Whether a movement is an improvement for an indicator where `direction` is better."""
    if moved is None or moved == "flat":
        return None
    return (moved == "up") == (direction == "higher")
