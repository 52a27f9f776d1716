"""Target status and trend rules, one row per case (rules.py docstring)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from caregrid.indicators.rules import improving, movement, target_status, trend_status

D = Decimal


@pytest.mark.parametrize(
    ("value", "comparator", "target", "expected"),
    [
        ("0.65", ">=", "0.65", "met"),  # 002 §四(一)3 基层 ≥ 65 %: exactly on target
        ("0.6175", ">=", "0.65", "close"),  # 5 % of 0.65 below: still close
        ("0.6174", ">=", "0.65", "missed"),
        ("7.8", "<=", "7.8", "met"),  # 平均住院日 ≤ 7.8
        ("8.19", "<=", "7.8", "close"),  # within 0.39 (5 %)
        ("8.2", "<=", "7.8", "missed"),
        ("3", "<", "3", "close"),  # 婴儿死亡率 < 3 ‰: equal is not below
        ("2.99", "<", "3", "met"),
        ("1.01", ">", "1", "met"),
        ("0.2019", "==", "0.2", "met"),  # 001 §三(二) 20 % of slots: within 1 %
        ("0.195", "==", "0.2", "close"),
        ("0.25", "==", "0.2", "missed"),
        (None, ">=", "0.65", None),  # no value (zero denominator)
    ],
)
def test_target_status(value: str | None, comparator: str, target: str, expected: str) -> None:
    assert target_status(D(value) if value else None, comparator, D(target)) == expected


@pytest.mark.parametrize(
    ("current", "previous", "wanted", "expected"),
    [
        ("0.60", "0.55", "rising", "met"),  # 001 §二 逐年提升
        ("0.55", "0.60", "rising", "missed"),
        ("0.5504", "0.55", "rising", "close"),  # within 1 % of the previous value: flat
        ("0.10", "0.12", "falling", "met"),  # 003 §一 县域外住院人次占比逐年下降
        ("0.12", "0.10", "falling", "missed"),
        ("0.12", None, "falling", None),  # no previous period
    ],
)
def test_trend_status(current: str, previous: str | None, wanted: str, expected: str) -> None:
    assert trend_status(D(current), D(previous) if previous else None, wanted) == expected


def test_movement_and_improvement_follow_the_direction() -> None:
    assert movement(D(5), D(4)) == "up"
    assert improving("up", "higher") is True
    assert improving("up", "lower") is False
    assert improving("flat", "lower") is None
    assert movement(D(0), D(0)) == "flat"
