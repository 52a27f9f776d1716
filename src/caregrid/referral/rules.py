"""Referral decisions as plain functions (no database), each citing the clause it applies.

The transition table of the workflow lives here too: one place says which action moves a
referral from which state to which."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# --- the workflow -----------------------------------------------------------------------------

# (state, action) -> next state. Anything else is an illegal transition (409).
TRANSITIONS: dict[tuple[str, str], str] = {
    ("draft", "submit"): "submitted",
    ("draft", "cancel"): "cancelled",
    ("submitted", "accept"): "accepted",
    ("submitted", "reject"): "rejected",
    ("submitted", "cancel"): "cancelled",
    ("submitted", "expire"): "expired",
    ("accepted", "schedule"): "scheduled",
    ("accepted", "cancel"): "cancelled",
    ("scheduled", "arrive"): "arrived",
    ("scheduled", "cancel"): "cancelled",
    ("arrived", "complete"): "completed",
}
TERMINAL = frozenset({"rejected", "completed", "cancelled", "expired"})

STATUS_LABELS = {
    "draft": "草稿",
    "submitted": "待接收",
    "accepted": "已接收",
    "rejected": "已退回",
    "scheduled": "已预约",
    "arrived": "已到诊",
    "completed": "已完成",
    "cancelled": "已取消",
    "expired": "超时未处理",
}
ACTION_LABELS = {
    "create": "创建",
    "submit": "提交",
    "accept": "接收",
    "reject": "退回",
    "schedule": "预约",
    "arrive": "到诊",
    "complete": "反馈完成",
    "cancel": "取消",
    "expire": "超时",
}


def next_status(status: str, action: str) -> str | None:
    """The state `action` leads to from `status`, or None when it is not allowed."""
    return TRANSITIONS.get((status, action))


def allowed_actions(status: str) -> list[str]:
    return [a for (s, a) in TRANSITIONS if s == status]


def due_at(submitted_at: datetime, limit_hours: float) -> datetime:
    """When a submitted referral must have been answered (profile
    `referral.response_time_limit_hours`)."""
    return submitted_at + timedelta(hours=limit_hours)


def is_overdue(status: str, due: datetime | None, at: datetime) -> bool:
    return status == "submitted" and due is not None and at > due


# --- upward referral --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    code: str
    text: str
    clause: str


@dataclass(frozen=True)
class Advice:
    recommended: bool
    reasons: tuple[Reason, ...]
    within_catalogue: bool | None


# Emergency thresholds of the national public-health standard (国家基本公共卫生服务规范第三版,
# 高血压/2型糖尿病患者健康管理服务规范): 紧急转诊.
EMERGENCY_SBP = 180.0
EMERGENCY_DBP = 110.0
EMERGENCY_GLUCOSE_HIGH = 16.7
EMERGENCY_GLUCOSE_LOW = 3.9
# Control targets used for “连续两次控制不满意”: BP < 140/90 (≥ 65 years: SBP < 150),
# fasting glucose < 7.0 mmol/L.
SBP_TARGET = 140.0
SBP_TARGET_ELDERLY = 150.0
DBP_TARGET = 90.0
FPG_TARGET = 7.0


@dataclass(frozen=True)
class Reading:
    """One follow-up measurement; any of the values may be missing."""

    at: datetime
    sbp: float | None = None
    dbp: float | None = None
    fpg: float | None = None


def emergency(reading: Reading) -> Reason | None:
    """SBP ≥ 180 and/or DBP ≥ 110, or glucose ≥ 16.7 or ≤ 3.9 mmol/L: refer urgently
    (规范第三版, 高血压 and 2型糖尿病 危急情况)."""
    if (reading.sbp is not None and reading.sbp >= EMERGENCY_SBP) or (
        reading.dbp is not None and reading.dbp >= EMERGENCY_DBP
    ):
        return Reason(
            "emergency_bp",
            f"血压 {_bp(reading)} mmHg 达到紧急转诊标准（收缩压≥180 和/或舒张压≥110）",
            "基本公共卫生服务规范（第三版）高血压 危急情况",
        )
    if reading.fpg is not None and (
        reading.fpg >= EMERGENCY_GLUCOSE_HIGH or reading.fpg <= EMERGENCY_GLUCOSE_LOW
    ):
        return Reason(
            "emergency_glucose",
            f"血糖 {reading.fpg:g} mmol/L 达到紧急转诊标准（≥16.7 或 ≤3.9）",
            "基本公共卫生服务规范（第三版）2型糖尿病 危急情况",
        )
    return None


def _bp(r: Reading) -> str:
    s = "—" if r.sbp is None else f"{r.sbp:g}"
    d = "—" if r.dbp is None else f"{r.dbp:g}"
    return f"{s}/{d}"


def bp_uncontrolled(reading: Reading, *, age: int | None = None) -> bool | None:
    """None when the reading has no blood pressure."""
    if reading.sbp is None and reading.dbp is None:
        return None
    sbp_target = SBP_TARGET_ELDERLY if age is not None and age >= 65 else SBP_TARGET
    return (reading.sbp is not None and reading.sbp >= sbp_target) or (
        reading.dbp is not None and reading.dbp >= DBP_TARGET
    )


def glucose_uncontrolled(reading: Reading) -> bool | None:
    if reading.fpg is None:
        return None
    return reading.fpg >= FPG_TARGET


def two_uncontrolled_in_a_row(
    readings: Sequence[Reading], *, age: int | None = None
) -> Reason | None:
    """The last two blood-pressure (or glucose) follow-ups both uncontrolled: refer up
    (规范第三版 分类干预 “连续两次出现血压/血糖控制不满意 … 建议其转诊到上级医院”)."""
    ordered = sorted(readings, key=lambda r: r.at)
    bp = [u for r in ordered if (u := bp_uncontrolled(r, age=age)) is not None]
    if len(bp) >= 2 and bp[-1] and bp[-2]:
        return Reason(
            "chronic_uncontrolled",
            "最近连续两次随访血压控制不满意",
            "基本公共卫生服务规范（第三版）高血压 分类干预",
        )
    glu = [u for r in ordered if (u := glucose_uncontrolled(r)) is not None]
    if len(glu) >= 2 and glu[-1] and glu[-2]:
        return Reason(
            "chronic_uncontrolled",
            "最近连续两次随访空腹血糖控制不满意",
            "基本公共卫生服务规范（第三版）2型糖尿病 分类干预",
        )
    return None


def upward_advice(
    *,
    within_catalogue: bool | None,
    readings: Sequence[Reading] = (),
    age: int | None = None,
    doctor_reason: str | None = None,
) -> Advice:
    """Should a primary doctor refer this case up?

    - outside the referring level's disease catalogue: yes (000 §三(一)2 功能定位 and per-level
      诊疗病种目录; 003 §二(五)17 各级核心病种清单);
    - within it, referral still fits on an emergency reading or two uncontrolled follow-ups in
      a row (规范第三版), or on the doctor's stated reason (001 §三(二)2 双向转诊标准 leave the
      judgement to the doctor)."""
    reasons: list[Reason] = []
    if within_catalogue is False:
        reasons.append(
            Reason(
                "outside_catalogue",
                "诊断不在本级机构诊疗病种目录内，建议上转",
                "000 §三(一)2；003 §二(五)17",
            )
        )
    latest = max(readings, key=lambda r: r.at) if readings else None
    if latest is not None and (urgent := emergency(latest)):
        reasons.append(urgent)
    if trigger := two_uncontrolled_in_a_row(readings, age=age):
        reasons.append(trigger)
    if doctor_reason and doctor_reason.strip():
        reasons.append(
            Reason("doctor", f"医生判断：{doctor_reason.strip()}", "001 §三(二)2 双向转诊标准")
        )
    return Advice(bool(reasons), tuple(reasons), within_catalogue)


def urgency(advice: Advice) -> bool:
    return any(r.code.startswith("emergency") for r in advice.reasons)


# --- downward referral ------------------------------------------------------------------------

# 001 §三(一)3 “急性病恢复期患者、术后恢复期患者及危重症稳定期患者”; 004 §五(三)3.
DOWN_CATEGORIES = {
    "acute_recovery": "急性病恢复期",
    "postoperative_recovery": "术后恢复期",
    "critical_stable": "危重症稳定期",
    "stable_chronic": "慢性病稳定期",
}


@dataclass(frozen=True)
class DownEligibility:
    eligible: bool
    reasons: tuple[str, ...]


def downward_eligibility(
    category: str, *, within_receiving_catalogue: bool | None, stable: bool = True
) -> DownEligibility:
    """May the lead hospital refer this patient down?

    The three recovery categories are eligible (001 §三(一)3; 004 §五(三)3); a chronic patient
    only when stable and the disease is within the receiving level's catalogue (县域高血压分级
    诊疗技术方案: 诊断明确、病情稳定; 000 §三(一)2 per-level catalogue)."""
    if category not in DOWN_CATEGORIES:
        return DownEligibility(False, (f"未知的下转类别：{category}",))
    if category != "stable_chronic":
        label = DOWN_CATEGORIES[category]
        return DownEligibility(True, (f"{label}患者，符合下转标准（001 §三(一)3）",))
    problems = []
    if not stable:
        problems.append("病情尚未稳定")
    if within_receiving_catalogue is False:
        problems.append("诊断不在接收机构诊疗病种目录内")
    if problems:
        return DownEligibility(False, tuple(problems))
    return DownEligibility(True, ("慢性病病情稳定，且在接收机构诊疗病种目录内（000 §三(一)2）",))


# --- priority ---------------------------------------------------------------------------------


def referral_priority(
    *, contracted: bool, from_primary: bool, urgent: bool = False, requires_contract: bool = True
) -> str:
    """Referred contracted residents are seen, examined and admitted first (001 §三(三)1
    “经基层转诊的签约居民可优先就诊、优先检查、优先住院”; 002 §四(三)1; 003 §二(五)17); plans
    that do not tie priority to a contract (`capacity.priority_requires_contract` false)
    give it to every referral from primary care. Emergencies are urgent regardless."""
    if urgent:
        return "urgent"
    if from_primary and (contracted or not requires_contract):
        return "priority"
    return "routine"
