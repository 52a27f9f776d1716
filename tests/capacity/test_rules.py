"""Capacity rules, one row per clause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caregrid.capacity import rules

START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("total", "share", "expected", "clause"),
    [
        (10, 0.2, 2, "001 §三(三)1 20% 门诊号源"),
        (12, 1 / 3, 4, "002 §四(三)1 至少 1/3 门诊号源"),
        (10, 1 / 3, 4, "002 §四(三)1 至少 1/3: rounded up"),
        (40, 0.25, 10, "002 §四(三)1 至少 1/4 住院床位"),
        (7, 0.25, 2, "002 §四(三)1 至少 1/4: rounded up"),
        (10, None, 0, "000/003: no reserved share set"),
    ],
)
def test_reserved_count_meets_the_plans_share(
    total: int, share: float | None, expected: int, clause: str
) -> None:
    assert rules.reserved_count(total, share) == expected, clause


@given(st.integers(min_value=0, max_value=5000), st.floats(min_value=0, max_value=1))
def test_reserved_count_never_falls_below_the_share_nor_exceeds_the_total(
    total: int, share: float
) -> None:
    count = rules.reserved_count(total, share)
    assert 0 <= count <= total
    assert count >= total * share - 1e-6


@pytest.mark.parametrize(
    ("level", "team", "allowed"),
    [
        ("primary", False, True),
        ("village", False, True),
        ("secondary", True, True),
        ("secondary", False, False),
        ("tertiary", False, False),
        (None, False, False),
    ],
)
def test_only_primary_members_and_family_doctor_teams_use_reserved_capacity(
    level: str | None, team: bool, allowed: bool
) -> None:
    assert rules.may_use_reserved(level, family_doctor_team=team) is allowed


def test_reserved_slot_is_released_at_the_profiles_lead_time() -> None:
    assert not rules.reserved_released(START, START - timedelta(hours=25), 24)
    assert rules.reserved_released(START, START - timedelta(hours=24), 24)
    assert not rules.reserved_released(START, START - timedelta(minutes=1), None)


@pytest.mark.parametrize(
    ("via_referral", "contracted", "expected"),
    [(True, True, 2), (True, False, 1), (False, True, 0), (False, False, 0)],
)
def test_referred_contracted_residents_are_admitted_first(
    via_referral: bool, contracted: bool, expected: int
) -> None:
    assert rules.admission_priority(via_referral=via_referral, contracted=contracted) == expected
