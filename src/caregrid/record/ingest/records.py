"""Normalised incoming records: what every ingestion path (FHIR Bundle, NDJSON, CSV) produces
and `upsert.ingest_batch` consumes. Validation that needs no database lives here (Pydantic);
references to institutions, residents and codes are resolved by the upsert step.

`source_system` is the sending member's institution code (or another registered system id)
and `source_id` that system's local id: together they make every record idempotent
(re-importing changes nothing; a changed record is updated, not duplicated)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

EncounterClass = Literal["outpatient", "emergency", "inpatient"]
AreaScope = Literal["local", "out_of_county", "out_of_city", "out_of_province"]
Disposition = Literal[
    "home", "transfer_up", "transfer_down", "transfer_other", "death", "against_advice", "other"
]
ResultCategory = Literal["lab", "imaging", "ecg", "pathology", "ultrasound", "vital"]
AbnormalFlag = Literal["N", "H", "L", "A"]
Fen = int  # money in fen (分), never negative


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PatientRef(Strict):
    """How an incoming record names its patient: the 身份证号 (matched in the master index),
    optionally with demographics used to register a resident that is not there yet."""

    id_number: str = Field(min_length=15, max_length=20)
    name: str | None = Field(default=None, max_length=30)
    birth_date: date | None = None
    sex: Literal["male", "female"] | None = None


class DiagnosisIn(Strict):
    code: str = Field(min_length=3, max_length=20, description="ICD-10")
    name: str | None = Field(default=None, max_length=100)
    rank: int = Field(default=1, ge=1, le=30, description="1 = 主要诊断")


class ProcedureIn(Strict):
    code: str = Field(min_length=2, max_length=20, description="ICD-9-CM-3")
    name: str | None = Field(default=None, max_length=100)
    grade: int | None = Field(default=None, ge=1, le=4, description="手术分级 1-4")
    minimally_invasive: bool = False
    performed_at: datetime | None = None


class EncounterIn(Strict):
    source_system: str = Field(min_length=1, max_length=60)
    source_id: str = Field(min_length=1, max_length=80)
    patient: PatientRef
    institution_code: str | None = Field(default=None, max_length=40, description="成员单位编码")
    external_institution: str | None = Field(default=None, max_length=100, description="集团外机构")
    area_scope: AreaScope = "local"
    department: str | None = Field(default=None, max_length=60)
    practitioner_code: str | None = Field(default=None, max_length=40)
    encounter_class: EncounterClass
    started_at: datetime
    ended_at: datetime | None = None
    disposition: Disposition | None = None
    tcm: bool = False
    drg_code: str | None = Field(default=None, max_length=20)
    drg_weight: float | None = Field(default=None, ge=0, le=100)
    total_fen: Fen = Field(default=0, ge=0)
    drug_fen: Fen = Field(default=0, ge=0)
    consumable_fen: Fen = Field(default=0, ge=0)
    exam_fen: Fen = Field(default=0, ge=0)
    treatment_fen: Fen = Field(default=0, ge=0)
    insurance_fen: Fen = Field(default=0, ge=0)
    out_of_catalogue_fen: Fen = Field(default=0, ge=0)
    self_pay_fen: Fen = Field(default=0, ge=0)
    diagnoses: list[DiagnosisIn] = Field(default_factory=list, max_length=30)
    procedures: list[ProcedureIn] = Field(default_factory=list, max_length=30)

    @model_validator(mode="after")
    def _consistent(self) -> EncounterIn:
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("出院/结束时间早于入院/开始时间")
        if self.institution_code is None and self.external_institution is None:
            raise ValueError("须填写成员单位编码（institution_code）或集团外机构名称")
        if self.institution_code is None and self.area_scope == "local":
            # a visit outside the group keeps its scope explicit for coverage indicators
            pass
        ranks = [d.rank for d in self.diagnoses]
        if len(ranks) != len(set(ranks)):
            raise ValueError("诊断序号（rank）重复")
        return self


class ResultIn(Strict):
    source_system: str = Field(min_length=1, max_length=60)
    source_id: str = Field(min_length=1, max_length=80)
    patient: PatientRef
    encounter_source_id: str | None = Field(default=None, max_length=80)
    # The encounter's own source system when it is not this record's (a result performed at a
    # shared diagnostic centre for a visit at another member: 乡检查、县诊断).
    encounter_source_system: str | None = Field(default=None, max_length=60)
    institution_code: str | None = Field(default=None, max_length=40, description="执行机构")
    category: ResultCategory
    item_code: str = Field(min_length=1, max_length=40)
    item_name: str = Field(min_length=1, max_length=100)
    value_num: float | None = None
    value_text: str | None = Field(default=None, max_length=200)
    unit: str | None = Field(default=None, max_length=20)
    ref_low: float | None = None
    ref_high: float | None = None
    abnormal_flag: AbnormalFlag | None = None
    findings: str | None = Field(default=None, max_length=4000)
    conclusion: str | None = Field(default=None, max_length=4000)
    observed_at: datetime
    eqa_passed: bool | None = None
    cost_fen: Fen = Field(default=0, ge=0)


class PrescriptionItemIn(Strict):
    drug_code: str | None = Field(default=None, max_length=40)
    drug_name: str = Field(min_length=1, max_length=100)
    dose: str | None = Field(default=None, max_length=40)
    frequency: str | None = Field(default=None, max_length=40)
    days_supplied: int | None = Field(default=None, ge=1, le=366)
    quantity: float | None = Field(default=None, ge=0)
    cost_fen: Fen = Field(default=0, ge=0)


class PrescriptionIn(Strict):
    source_system: str = Field(min_length=1, max_length=60)
    source_id: str = Field(min_length=1, max_length=80)
    patient: PatientRef
    encounter_source_id: str | None = Field(default=None, max_length=80)
    # The encounter's own source system when it is not this record's (a result performed at a
    # shared diagnostic centre for a visit at another member: 乡检查、县诊断).
    encounter_source_system: str | None = Field(default=None, max_length=60)
    institution_code: str | None = Field(default=None, max_length=40)
    practitioner_code: str | None = Field(default=None, max_length=40)
    prescribed_at: datetime
    items: list[PrescriptionItemIn] = Field(min_length=1, max_length=50)


IncomingRecord = EncounterIn | ResultIn | PrescriptionIn

# The stored columns of an encounter that come straight from the sender, in the order of
# `EncounterRow.content` (the others are references resolved by the upsert step).
ENCOUNTER_CONTENT = (
    "encounter_class",
    "area_scope",
    "external_institution",
    "started_at",
    "ended_at",
    "disposition",
    "tcm",
    "drg_code",
    "drg_weight",
    "total_fen",
    "drug_fen",
    "consumable_fen",
    "exam_fen",
    "treatment_fen",
    "insurance_fen",
    "out_of_catalogue_fen",
    "self_pay_fen",
)


class EncounterRow(NamedTuple):
    """An encounter a bulk reader (CSV) has already checked and converted to stored form, with
    its references still as codes: what `upsert.ingest_encounter_rows` writes without building
    an `EncounterIn` per record. It holds only what `EncounterIn` would accept, in the form
    `upsert` would store it (times aware and UTC, money in fen, `drg_weight` rounded to 4
    places), except the diagnosis codes: those are as sent, checked and cleaned by `upsert`."""

    position: int  # in its batch
    source_system: str
    source_id: str
    id_number: str  # as sent: normalised and resolved by the upsert step
    institution_code: str | None
    department: str | None
    practitioner_code: str | None
    content: tuple[Any, ...]  # ENCOUNTER_CONTENT, in order
    diagnoses: list[tuple[str, str | None, int]]  # (code, name, rank)
    # (code, name, grade, minimally invasive, performed at)
    procedures: list[tuple[str, str | None, int | None, bool, datetime | None]]


def encounter_key(record: ResultIn | PrescriptionIn) -> tuple[str, str] | None:
    """(source system, source id) of the encounter a result or prescription belongs to."""
    if not record.encounter_source_id:
        return None
    return (record.encounter_source_system or record.source_system, record.encounter_source_id)


class RecordError(BaseModel):
    """One problem with one incoming record: where it was (index in the batch or bundle, line
    of a CSV file), which field, and what is wrong (Chinese)."""

    index: int | None = None
    line: int | None = None
    source_id: str | None = None
    field: str
    problem: str


class IngestReport(BaseModel):
    """What a batch did. With any error nothing of the batch is written (`committed` False)."""

    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    residents_registered: int = 0
    errors: list[RecordError] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors
