"""Pydantic models of the shared health record API: the merged timeline, vital-sign series and
mutual recognition of results (互认, 国卫医发〔2022〕6号)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from caregrid.core.ids import RefId
from caregrid.record.models import REEXAM_REASONS

EntryType = Literal["encounter", "result", "prescription"]
ENTRY_TYPES: tuple[EntryType, ...] = ("encounter", "result", "prescription")

ENTRY_TYPE_LABELS = {"encounter": "就诊", "result": "检查检验", "prescription": "处方"}
ENCOUNTER_CLASS_LABELS = {"outpatient": "门诊", "emergency": "急诊", "inpatient": "住院"}
DISPOSITION_LABELS = {
    "home": "离院回家",
    "transfer_up": "上转",
    "transfer_down": "下转",
    "transfer_other": "转其他机构",
    "death": "死亡",
    "against_advice": "自动出院",
    "other": "其他",
}
CATEGORY_LABELS = {
    "lab": "检验",
    "imaging": "影像",
    "ecg": "心电",
    "pathology": "病理",
    "ultrasound": "超声",
    "vital": "体征",
}
FLAG_LABELS = {"N": "正常", "H": "偏高", "L": "偏低", "A": "异常"}
# 国卫医发〔2022〕6号 and the NHC's explanation: the six situations that justify re-examination.
REEXAM_REASON_LABELS = {
    "condition_changed": "病情变化",
    "rapid_change": "结果变化较快",
    "before_major_procedure": "重大医疗措施前（如手术、输血）",
    "emergency": "急诊急救",
    "forensic_or_disability": "司法/伤残/病退鉴定",
    "other": "其他（须说明）",
}
assert set(REEXAM_REASON_LABELS) == set(REEXAM_REASONS)

Decision = Literal["used_existing", "ordered_anyway"]
DECISION_LABELS = {"used_existing": "采用已有结果", "ordered_anyway": "仍需开单"}
CheckStatus = Literal[
    "recognizable", "expired", "eqa_not_passed", "not_recognizable", "no_result", "no_rule"
]


# --- timeline ------------------------------------------------------------------------------


class DiagnosisRead(BaseModel):
    code: str
    name: str | None
    rank: int
    primary: bool


class ProcedureRead(BaseModel):
    code: str
    name: str | None
    grade: int | None
    minimally_invasive: bool
    performed_at: datetime | None


class Costs(BaseModel):
    """Costs in integer fen, and the total formatted in 元 for people."""

    total_fen: int
    drug_fen: int
    consumable_fen: int
    exam_fen: int
    treatment_fen: int
    insurance_fen: int
    out_of_catalogue_fen: int
    self_pay_fen: int
    total_yuan: str


class EncounterDetail(BaseModel):
    encounter_class: str
    class_label: str
    area_scope: str
    external_institution: str | None
    department: str | None
    ended_at: datetime | None
    disposition: str | None
    disposition_label: str | None
    drg_code: str | None
    drg_weight: float | None
    tcm: bool
    diagnoses: list[DiagnosisRead]
    procedures: list[ProcedureRead]
    costs: Costs


class ResultDetail(BaseModel):
    """A lab item or a report. `conclusion` is the physician's diagnostic conclusion: shown in
    the record, never offered for mutual recognition (国卫医发〔2022〕6号 第二条)."""

    category: str
    category_label: str
    item_code: str
    item_name: str
    value_num: float | None
    value_text: str | None
    unit: str | None
    ref_low: float | None
    ref_high: float | None
    abnormal_flag: str | None
    findings: str | None
    conclusion: str | None
    eqa_passed: bool | None


class PrescriptionItemRead(BaseModel):
    drug_code: str | None
    drug_name: str
    dose: str | None
    frequency: str | None
    days_supplied: int | None
    quantity: float | None


class PrescriptionDetail(BaseModel):
    items: list[PrescriptionItemRead]
    days_supplied: int | None  # the longest item


class TimelineEntry(BaseModel):
    type: EntryType
    id: int
    at: datetime
    institution_id: int | None
    institution_name: str | None
    title: str
    encounter: EncounterDetail | None = None
    result: ResultDetail | None = None
    prescription: PrescriptionDetail | None = None


class Timeline(BaseModel):
    resident_id: int
    items: list[TimelineEntry]
    total: int
    counts: dict[str, int]
    limit: int
    offset: int


class TimelinePage(BaseModel):
    resident_id: int
    items: list[TimelineEntry]
    total: int
    counts: dict[str, int]
    page: int
    size: int


class SeriesPoint(BaseModel):
    at: datetime
    value: float
    institution_id: int | None


class VitalSeries(BaseModel):
    """Series for the charts: blood pressure, fasting glucose and HbA1c, oldest first, with
    the target lines drawn beside them."""

    resident_id: int
    sbp: list[SeriesPoint]
    dbp: list[SeriesPoint]
    fpg: list[SeriesPoint]
    hba1c: list[SeriesPoint]
    targets: dict[str, float]


# --- mutual recognition ---------------------------------------------------------------------


class OrderCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_codes: list[str] = Field(
        min_length=1, max_length=50, description="拟开具的检查检验项目代码"
    )

    @field_validator("item_codes")
    @classmethod
    def _clean(cls, value: list[str]) -> list[str]:
        codes = [c.strip() for c in value]
        if any(not c or len(c) > 40 for c in codes):
            raise ValueError("项目代码不能为空，且不超过 40 个字符")
        return codes


class OrderCheck(BaseModel):
    """The answer for one item about to be ordered. Only result data is offered: never the
    physician's diagnostic conclusion (国卫医发〔2022〕6号 第二条)."""

    item_code: str
    item_name: str
    category: str | None
    status: CheckStatus
    recognizable: bool
    message: str
    validity_days: int | None
    requires_eqa: bool
    typical_cost_fen: int
    result_id: int | None = None
    institution_id: int | None = None
    institution_name: str | None = None
    observed_at: datetime | None = None
    days_ago: int | None = None
    value_num: float | None = None
    value_text: str | None = None
    unit: str | None = None
    ref_low: float | None = None
    ref_high: float | None = None
    abnormal_flag: str | None = None
    findings: str | None = None


class OrderDecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_code: str = Field(min_length=1, max_length=40)
    result_id: RefId
    decision: Decision
    reason_code: str | None = Field(default=None, max_length=30)
    reason_text: str | None = Field(default=None, max_length=300)


class OrderDecisionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    resident_id: int
    result_id: int
    item_code: str
    institution_id: int | None
    group_id: int | None
    decision: str
    reason_code: str | None
    reason_text: str | None
    avoided_cost_fen: int
    decided_at: datetime


class RuleRead(BaseModel):
    item_code: str
    item_name: str
    category: str
    recognizable: bool
    validity_days: int
    requires_eqa: bool
    typical_cost_fen: int
    note: str | None
    source: str | None
    aliases: list[str] = []
    scope: Literal["default", "group"]
    group_id: int | None


class RuleUpdate(BaseModel):
    """A group's own rule for one item; omitted fields keep the default rule's value."""

    model_config = ConfigDict(extra="forbid")

    item_name: str | None = Field(default=None, min_length=1, max_length=100)
    category: Literal["lab", "imaging", "ecg", "pathology", "ultrasound"] | None = None
    recognizable: bool | None = None
    validity_days: int | None = Field(default=None, ge=0, le=3650)
    requires_eqa: bool | None = None
    typical_cost_fen: int | None = Field(default=None, ge=0, le=10_000_000_00)
    note: str | None = Field(default=None, max_length=300)


class RecognitionStats(BaseModel):
    """Offers of recognisable results and what doctors did with them: `offered` = results shown
    by the order check (once per doctor, result and day), `undecided` = offers without a
    decision, `used` = repeats avoided, `overridden` = ordered anyway with a reason."""

    group_id: int | None
    since: datetime | None
    until: datetime | None
    offered: int
    undecided: int
    used: int
    overridden: int
    avoided_cost_fen: int
    by_reason: dict[str, int]
