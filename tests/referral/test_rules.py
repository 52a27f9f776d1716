"""Referral rules, one row per clause of a seed or a national standard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from caregrid.referral import rules
from caregrid.referral.rules import Reading

T = datetime(2026, 11, 1, tzinfo=UTC)


def readings(*values: tuple[float | None, float | None, float | None]) -> list[Reading]:
    return [Reading(T + timedelta(days=14 * i), *v) for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("within", "series", "reason", "recommended", "code", "clause"),
    [
        (False, [], None, True, "outside_catalogue", "000 §三(一)2 / 003 §二(五)17 目录外上转"),
        (True, [], None, False, None, "目录内且无触发条件: 不建议上转"),
        (True, [(182, 95, None)], None, True, "emergency_bp", "规范 SBP ≥ 180"),
        (True, [(150, 112, None)], None, True, "emergency_bp", "规范 DBP ≥ 110"),
        (True, [(None, None, 16.7)], None, True, "emergency_glucose", "规范 血糖 ≥ 16.7"),
        (True, [(None, None, 3.9)], None, True, "emergency_glucose", "规范 血糖 ≤ 3.9"),
        (True, [(179, 109, 7.5)], None, False, None, "规范: just under the thresholds"),
        (
            True,
            [(150, 92, None), (152, 95, None)],
            None,
            True,
            "chronic_uncontrolled",
            "规范 分类干预: 连续两次血压控制不满意",
        ),
        (
            True,
            [(150, 92, None), (130, 80, None)],
            None,
            False,
            None,
            "规范 分类干预: 第一次不满意只调药",
        ),
        (
            True,
            [(None, None, 8.1), (None, None, 9.0)],
            None,
            True,
            "chronic_uncontrolled",
            "规范 2型糖尿病: 连续两次空腹血糖 ≥ 7.0",
        ),
        (True, [], "疑似继发性高血压", True, "doctor", "001 §三(二)2 医生判断"),
    ],
)
def test_upward_referral_advice(
    within: bool,
    series: list[tuple[float | None, float | None, float | None]],
    reason: str | None,
    recommended: bool,
    code: str | None,
    clause: str,
) -> None:
    advice = rules.upward_advice(
        within_catalogue=within, readings=readings(*series), doctor_reason=reason
    )
    assert advice.recommended is recommended, clause
    if code is not None:
        assert advice.reasons[0].code == code, clause


def test_elderly_blood_pressure_target_is_150() -> None:
    series = readings((145, 85, None), (148, 88, None))
    assert rules.two_uncontrolled_in_a_row(series, age=70) is None
    assert rules.two_uncontrolled_in_a_row(series, age=50) is not None


@pytest.mark.parametrize(
    ("category", "within", "stable", "eligible", "clause"),
    [
        ("acute_recovery", None, True, True, "001 §三(一)3 急性病恢复期"),
        ("postoperative_recovery", None, True, True, "001 §三(一)3 术后恢复期"),
        ("critical_stable", None, True, True, "001 §三(一)3 危重症稳定期"),
        ("stable_chronic", True, True, True, "000 §三(一)2 稳定慢病 目录内"),
        ("stable_chronic", False, True, False, "000 §三(一)2 接收机构目录外"),
        ("stable_chronic", True, False, False, "分级诊疗技术方案: 病情稳定方可下转"),
        ("unknown", None, True, False, "not a category"),
    ],
)
def test_downward_eligibility(
    category: str, within: bool | None, stable: bool, eligible: bool, clause: str
) -> None:
    result = rules.downward_eligibility(category, within_receiving_catalogue=within, stable=stable)
    assert result.eligible is eligible, clause


@pytest.mark.parametrize(
    ("contracted", "from_primary", "urgent", "requires_contract", "expected", "clause"),
    [
        (True, True, False, True, "priority", "001 §三(三)1 经基层转诊的签约居民优先"),
        (False, True, False, True, "routine", "001 §三(三)1 未签约: 不享受"),
        (True, False, False, True, "routine", "001 §三(三)1 须经基层转诊"),
        (False, True, False, False, "priority", "003 §二(五)17 预约转诊优先 (no contract tie)"),
        (False, False, True, True, "urgent", "规范 危急情况 紧急转诊"),
    ],
)
def test_priority_for_referred_contracted_residents(
    contracted: bool,
    from_primary: bool,
    urgent: bool,
    requires_contract: bool,
    expected: str,
    clause: str,
) -> None:
    assert (
        rules.referral_priority(
            contracted=contracted,
            from_primary=from_primary,
            urgent=urgent,
            requires_contract=requires_contract,
        )
        == expected
    ), clause


def test_every_state_is_reachable_and_terminal_states_have_no_exit() -> None:
    reachable = {"draft"} | set(rules.TRANSITIONS.values())
    assert set(rules.STATUS_LABELS) == reachable
    for state in rules.TERMINAL:
        assert rules.allowed_actions(state) == []


@pytest.mark.parametrize(
    ("status", "action", "expected"),
    [
        ("submitted", "accept", "accepted"),
        ("submitted", "reject", "rejected"),
        ("submitted", "expire", "expired"),
        ("accepted", "schedule", "scheduled"),
        ("scheduled", "arrive", "arrived"),
        ("arrived", "complete", "completed"),
        ("draft", "accept", None),
        ("submitted", "arrive", None),
        ("completed", "cancel", None),
        ("expired", "accept", None),
        ("rejected", "accept", None),
    ],
)
def test_transition_table(status: str, action: str, expected: str | None) -> None:
    assert rules.next_status(status, action) == expected


def test_overdue_after_the_time_limit() -> None:
    due = rules.due_at(T, 48)
    assert not rules.is_overdue("submitted", due, T + timedelta(hours=47))
    assert rules.is_overdue("submitted", due, T + timedelta(hours=49))
    assert not rules.is_overdue("accepted", due, T + timedelta(hours=49))
