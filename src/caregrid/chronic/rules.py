"""The chronic-care rules as pure functions: no database, no clock (the caller passes dates).

Every decision carries the clause that triggers it. Sources (reference/standards.md §1.6, §2.4):

- 国家基本公共卫生服务规范（第三版） — 高血压患者健康管理服务规范 and 2型糖尿病患者健康管理服务规范:
  managed from age 35; at least 4 face-to-face follow-ups a year; controlled means SBP < 140 and
  DBP < 90 mmHg (hypertension) or fasting glucose < 7.0 mmol/L (diabetes); emergency referral at
  SBP ≥ 180 or DBP ≥ 110 mmHg, or glucose ≥ 16.7 or ≤ 3.9 mmol/L (then follow up within 2
  weeks); first uncontrolled reading → adjust medication and revisit within 2 weeks; two
  uncontrolled in a row → refer up and follow up within 2 weeks; the control rate counts the
  latest follow-up of the year and a patient lost to follow-up as not controlled.
- 长期处方管理规范（试行）（国卫办医发〔2021〕17号）: a long prescription normally ≤ 4 weeks, for
  stable patients up to 12 weeks; over 4 weeks needs the doctor's assessment on record; toxic,
  radioactive, precursor, narcotic and class-I/II psychotropic drugs, antimicrobials (except for
  chronic infections such as tuberculosis) and drugs with special storage needs are excluded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from caregrid.core.errors import Invalid

HT = "国家基本公共卫生服务规范（第三版）高血压患者健康管理服务规范"
DM = "国家基本公共卫生服务规范（第三版）2型糖尿病患者健康管理服务规范"
LRX = "长期处方管理规范（试行）2021"

# Control targets and emergency thresholds (national standard, not a plan's number).
SBP_CONTROLLED_BELOW = 140
DBP_CONTROLLED_BELOW = 90
FPG_CONTROLLED_BELOW = 7.0
SBP_EMERGENCY_AT = 180
DBP_EMERGENCY_AT = 110
FPG_EMERGENCY_HIGH_AT = 16.7
FPG_EMERGENCY_LOW_AT = 3.9
MIN_AGE = 35
FACE_TO_FACE_PER_YEAR = 4
REVISIT_DAYS = 14
# "At least 4 a year": the next routine visit one quarter after a controlled one.
ROUTINE_INTERVAL_DAYS = 91
# Lost to follow-up (失访): no follow-up for two routine intervals. The standard counts a lost
# patient as not controlled but sets no interval; two missed quarterly visits is our choice.
LOST_AFTER_DAYS = 2 * ROUTINE_INTERVAL_DAYS

# Physiological plausibility: outside these a value is a typing error, not a reading.
SBP_RANGE = (60, 300)
DBP_RANGE = (30, 200)
FPG_RANGE = (1.0, 40.0)

LONG_RX_MAX_WEEKS = 12
LONG_RX_PLAIN_WEEKS = 4
# Drug classes a long prescription may not contain (长期处方管理规范 第九条 as summarised).
EXCLUDED_DRUG_CLASSES: dict[str, str] = {
    "toxic": "医疗用毒性药品",
    "radioactive": "放射性药品",
    "precursor": "易制毒药品",
    "narcotic": "麻醉药品",
    "psychotropic_1": "第一类精神药品",
    "psychotropic_2": "第二类精神药品",
    "antimicrobial": "抗微生物药物（治疗结核等慢性细菌真菌感染性疾病的除外）",
    "special_storage": "对储存条件有特殊要求的药品",
}
ALLOWED_DRUG_CLASSES: dict[str, str] = {
    "antihypertensive": "降压药",
    "hypoglycaemic": "降糖药",
    "lipid_lowering": "调脂药",
    "antiplatelet": "抗血小板药",
    "antituberculosis": "抗结核药",
    "other_chronic": "其他慢病常用药",
}

ACTIONS = ("routine", "adjust_revisit", "refer_up", "emergency_referral")
ACTION_LABELS = {
    "routine": "控制满意：预约下次随访",
    "adjust_revisit": "第一次控制不满意：调整用药，2 周内随访",
    "refer_up": "连续两次控制不满意：转诊上级医院，2 周内随访转诊情况",
    "emergency_referral": "危急情况：处理后紧急转诊，2 周内随访转诊情况",
}
PROGRAM_LABELS = {"hypertension": "高血压", "diabetes": "2型糖尿病"}


@dataclass(frozen=True)
class Reading:
    """What one follow-up measured. Blood pressure is taken at every follow-up of both
    programmes; fasting glucose is needed for diabetes."""

    sbp: int | None
    dbp: int | None
    fasting_glucose: float | None = None


@dataclass(frozen=True)
class Decision:
    controlled: bool
    action: str
    clause: str
    next_due: date

    @property
    def label(self) -> str:
        return ACTION_LABELS[self.action]


def validate_reading(program: str, reading: Reading) -> None:
    """Reject values no living patient has, naming the field and the rule."""
    if program not in PROGRAM_LABELS:
        raise Invalid(f"未知慢病项目：{program}", field="program")
    if reading.sbp is None or reading.dbp is None:
        if program == "hypertension":
            raise Invalid("高血压随访必须测量血压（收缩压和舒张压）", field="sbp", rule=HT)
    else:
        low, high = SBP_RANGE
        if not low <= reading.sbp <= high:
            raise Invalid(
                f"收缩压 {reading.sbp} mmHg 超出生理范围（{low}–{high}）",
                field="sbp",
                rule="physiological_range",
            )
        low, high = DBP_RANGE
        if not low <= reading.dbp <= high:
            raise Invalid(
                f"舒张压 {reading.dbp} mmHg 超出生理范围（{low}–{high}）",
                field="dbp",
                rule="physiological_range",
            )
        if reading.dbp >= reading.sbp:
            raise Invalid("舒张压必须低于收缩压", field="dbp", rule="physiological_range")
    if reading.fasting_glucose is None:
        if program == "diabetes":
            raise Invalid("糖尿病随访必须测量空腹血糖", field="fasting_glucose", rule=DM)
    else:
        low_g, high_g = FPG_RANGE
        if not low_g <= reading.fasting_glucose <= high_g:
            raise Invalid(
                f"空腹血糖 {reading.fasting_glucose} mmol/L 超出生理范围（{low_g}–{high_g}）",
                field="fasting_glucose",
                rule="physiological_range",
            )


def emergency_reason(program: str, reading: Reading) -> str | None:
    """The clause of a danger sign that calls for emergency referral, or None."""
    source = HT if program == "hypertension" else DM
    if reading.sbp is not None and reading.sbp >= SBP_EMERGENCY_AT:
        return f"{source}：收缩压≥{SBP_EMERGENCY_AT}mmHg，紧急转诊"
    if reading.dbp is not None and reading.dbp >= DBP_EMERGENCY_AT:
        return f"{source}：舒张压≥{DBP_EMERGENCY_AT}mmHg，紧急转诊"
    if program == "diabetes" and reading.fasting_glucose is not None:
        if reading.fasting_glucose >= FPG_EMERGENCY_HIGH_AT:
            return f"{DM}：血糖≥{FPG_EMERGENCY_HIGH_AT}mmol/L，紧急转诊"
        if reading.fasting_glucose <= FPG_EMERGENCY_LOW_AT:
            return f"{DM}：血糖≤{FPG_EMERGENCY_LOW_AT}mmol/L，紧急转诊"
    return None


def is_controlled(program: str, reading: Reading) -> bool:
    """Hypertension: SBP < 140 and DBP < 90 (both). Diabetes: fasting glucose < 7.0."""
    if program == "hypertension":
        return (
            reading.sbp is not None
            and reading.dbp is not None
            and reading.sbp < SBP_CONTROLLED_BELOW
            and reading.dbp < DBP_CONTROLLED_BELOW
        )
    return reading.fasting_glucose is not None and reading.fasting_glucose < FPG_CONTROLLED_BELOW


def assess(
    program: str, reading: Reading, *, on: date, previous_controlled: bool | None
) -> Decision:
    """The next action after a follow-up on `on`. `previous_controlled` is the control status
    of the previous follow-up in the same programme (None when this is the first)."""
    validate_reading(program, reading)
    source = HT if program == "hypertension" else DM
    controlled = is_controlled(program, reading)
    emergency = emergency_reason(program, reading)
    if emergency is not None:
        return Decision(False, "emergency_referral", emergency, on + timedelta(REVISIT_DAYS))
    if controlled:
        return Decision(
            True,
            "routine",
            f"{source}：控制满意，预约下一次随访（每年至少{FACE_TO_FACE_PER_YEAR}次面对面随访）",
            on + timedelta(ROUTINE_INTERVAL_DAYS),
        )
    target = "血压≥140/90mmHg" if program == "hypertension" else "空腹血糖≥7.0mmol/L"
    if previous_controlled is False:
        return Decision(
            False,
            "refer_up",
            f"{source}：连续两次控制不满意（{target}），转诊上级医院，2周内主动随访",
            on + timedelta(REVISIT_DAYS),
        )
    return Decision(
        False,
        "adjust_revisit",
        f"{source}：第一次控制不满意（{target}），调整用药，2周内随访",
        on + timedelta(REVISIT_DAYS),
    )


def check_followup_date(on: date, *, today: date, enrolled_on: date) -> None:
    if on > today:
        raise Invalid("随访日期不能晚于今天", field="followed_on", rule="followup_in_future")
    if on < enrolled_on:
        raise Invalid(
            f"随访日期早于纳入管理日期（{enrolled_on.isoformat()}）",
            field="followed_on",
            rule="followup_before_enrolment",
        )


def eligible_age(age: int) -> bool:
    """The programmes manage residents aged 35 and over."""
    return age >= MIN_AGE


def is_lost(last_followup: date | None, enrolled_on: date, *, on: date) -> bool:
    """Lost to follow-up: no follow-up for `LOST_AFTER_DAYS` (counted from enrolment when there
    has been none)."""
    since = last_followup or enrolled_on
    return (on - since).days > LOST_AFTER_DAYS


def required_face_to_face(enrolled_on: date, year_start: date, until: date) -> int:
    """Face-to-face follow-ups the standard requires from `year_start` (1 January) to `until`
    (inclusive): 4 for a whole year, pro rata for part of a year, whether the year is not over
    yet or the patient was enrolled during it (to the nearest whole visit, halves up, at least
    1). The standard states the yearly count only; pro rata is our choice."""
    start = max(enrolled_on, year_start)
    if start > until:
        return 0
    days = (until - start).days + 1
    year_days = (date(year_start.year + 1, 1, 1) - date(year_start.year, 1, 1)).days
    return max(1, math.floor(FACE_TO_FACE_PER_YEAR * days / year_days + 0.5))


def is_standard_managed(face_to_face: int, required: int) -> bool:
    """规范管理: the required number of face-to-face follow-ups in the year."""
    return required > 0 and face_to_face >= required


def check_long_prescription(
    *, weeks: int, drug_class: str, assessment_note: str | None, stable: bool
) -> None:
    """Reject a long prescription that breaks 长期处方管理规范（试行）2021."""
    if drug_class in EXCLUDED_DRUG_CLASSES:
        raise Invalid(
            f"{EXCLUDED_DRUG_CLASSES[drug_class]}不得开具长期处方（{LRX}）",
            field="drug_class",
            rule="excluded_drug_class",
        )
    if drug_class not in ALLOWED_DRUG_CLASSES:
        raise Invalid(f"未知药品类别：{drug_class}", field="drug_class", rule="drug_class")
    if weeks < 1:
        raise Invalid("处方周数至少为 1", field="weeks", rule="long_rx_weeks")
    if weeks > LONG_RX_MAX_WEEKS:
        raise Invalid(
            f"长期处方最长不超过{LONG_RX_MAX_WEEKS}周（{LRX}）",
            field="weeks",
            rule="long_rx_max_12_weeks",
        )
    if weeks > LONG_RX_PLAIN_WEEKS:
        if not stable:
            raise Invalid(
                f"病情未控制平稳，处方不得超过{LONG_RX_PLAIN_WEEKS}周（{LRX}）",
                field="weeks",
                rule="long_rx_requires_stable",
            )
        if not (assessment_note and assessment_note.strip()):
            raise Invalid(
                f"超过{LONG_RX_PLAIN_WEEKS}周的长期处方须记录医师评估意见（{LRX}）",
                field="assessment_note",
                rule="long_rx_assessment_over_4_weeks",
            )
