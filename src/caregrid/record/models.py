"""The group's shared health record (电子健康档案和电子病历连续记录, 000 §三(三)5; 004 §五(二)4):
encounters with diagnoses, procedures and costs, results (lab items and reports), and
prescriptions, each keyed by the sending system's identifiers so that imports are idempotent,
plus the mutual-recognition rules (互认) and the decisions doctors take with them.

Every clinical table carries the group and institution it belongs to (DESIGN §6). Money is
integer fen."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from caregrid.core.clock import now
from caregrid.core.db import Base, UTCDateTime

ENCOUNTER_CLASSES = ("outpatient", "emergency", "inpatient")
# Where the visit happened relative to the resident's area (县域内/市域内就诊率 need it).
AREA_SCOPES = ("local", "out_of_county", "out_of_city", "out_of_province")
DISPOSITIONS = (
    "home",
    "transfer_up",
    "transfer_down",
    "transfer_other",
    "death",
    "against_advice",
    "other",
)
RESULT_CATEGORIES = ("lab", "imaging", "ecg", "pathology", "ultrasound", "vital")
ABNORMAL_FLAGS = ("N", "H", "L", "A")
# 国卫医发〔2022〕6号 and the 2024 guidance: the six situations that justify re-examination.
REEXAM_REASONS = (
    "condition_changed",
    "rapid_change",
    "before_major_procedure",
    "emergency",
    "forensic_or_disability",
    "other",
)

Fen = BigInteger().with_variant(Integer, "sqlite")


class Encounter(Base):
    __tablename__ = "encounter"
    __table_args__ = (
        CheckConstraint(f"encounter_class IN {ENCOUNTER_CLASSES!r}", name="class"),
        CheckConstraint(f"area_scope IN {AREA_SCOPES!r}", name="area_scope"),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="period"),
        # Every query by resident (timeline, FHIR search, the care-relationship check by
        # resident and institution) reads this one: a resident has dozens of encounters, not
        # millions, so a second (resident, institution) index only slowed every import.
        Index("ix_encounter_resident_started", "resident_id", "started_at"),
        UniqueConstraint("source_system", "source_id", name="uq_encounter_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    # NULL for a visit outside the group (then external_institution names the hospital).
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    # Not indexed: nothing selects encounters by group alone (the indicator store reads them
    # in id order and groups them itself).
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    encounter_class: Mapped[str] = mapped_column(String(12))
    area_scope: Mapped[str] = mapped_column(String(16), default="local", server_default="local")
    external_institution: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disposition: Mapped[str | None] = mapped_column(String(16))
    tcm: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # 中医类诊疗
    drg_code: Mapped[str | None] = mapped_column(String(20))
    drg_weight: Mapped[float | None] = mapped_column(Numeric(8, 4, asdecimal=False))
    total_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    drug_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    consumable_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    exam_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    treatment_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    insurance_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    out_of_catalogue_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    self_pay_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    source_system: Mapped[str | None] = mapped_column(String(60))
    source_id: Mapped[str | None] = mapped_column(String(80))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=now, onupdate=now)


class Diagnosis(Base):
    __tablename__ = "diagnosis"
    __table_args__ = (
        Index("ix_diagnosis_resident_code", "resident_id", "code"),
        UniqueConstraint("encounter_id", "rank", name="uq_diagnosis_rank"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Looked up through uq_diagnosis_rank (encounter_id, rank): no index of its own.
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounter.id", ondelete="CASCADE"))
    # The encounter's resident, copied for per-resident queries; its integrity follows from
    # the encounter's own foreign key (a second check per diagnosis row only slowed imports).
    resident_id: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(20))  # ICD-10 (国家临床版 2.0 / 医保版 2.0)
    name: Mapped[str | None] = mapped_column(String(100))
    rank: Mapped[int] = mapped_column(Integer)  # 1 = primary (主要诊断)


class Birth(Base):
    """A live birth recorded in the shared record: the newborn resident and the mother's
    delivery admission it came from (the mother is that encounter's resident). One row per
    baby, so twins are two rows of one delivery; a baby has at most one birth."""

    __tablename__ = "birth"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_encounter_id: Mapped[int] = mapped_column(
        ForeignKey("encounter.id", ondelete="CASCADE"), index=True
    )
    newborn_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), unique=True)


class Procedure(Base):
    __tablename__ = "procedure_record"
    __table_args__ = (CheckConstraint("grade IS NULL OR grade BETWEEN 1 AND 4", name="grade"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int] = mapped_column(
        ForeignKey("encounter.id", ondelete="CASCADE"), index=True
    )
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    code: Mapped[str] = mapped_column(String(20))  # ICD-9-CM-3 (手术操作分类代码国家临床版 3.0)
    name: Mapped[str | None] = mapped_column(String(100))
    grade: Mapped[int | None] = mapped_column(Integer)  # 手术分级 1-4
    minimally_invasive: Mapped[bool] = mapped_column(Boolean, default=False)
    performed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Result(Base):
    """A lab item, a vital sign, or an imaging / ECG / pathology / ultrasound report. The
    physician's diagnostic conclusion is kept but is never what mutual recognition accepts
    (国卫医发〔2022〕6号 第二条: 检查检验结果不包括医师出具的诊断结论)."""

    __tablename__ = "result"
    __table_args__ = (
        CheckConstraint(f"category IN {RESULT_CATEGORIES!r}", name="category"),
        CheckConstraint(
            "abnormal_flag IS NULL OR abnormal_flag IN ('N', 'H', 'L', 'A')", name="flag"
        ),
        Index("ix_result_resident_item", "resident_id", "item_code", "observed_at"),
        Index("ix_result_resident_observed", "resident_id", "observed_at"),
        UniqueConstraint("source_system", "source_id", name="uq_result_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    encounter_id: Mapped[int | None] = mapped_column(
        ForeignKey("encounter.id", ondelete="SET NULL")
    )
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    category: Mapped[str] = mapped_column(String(12))
    item_code: Mapped[str] = mapped_column(String(40))  # local or LOINC code, e.g. "CBC", "8480-6"
    item_name: Mapped[str] = mapped_column(String(100))
    value_num: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(20))
    ref_low: Mapped[float | None] = mapped_column(Float)
    ref_high: Mapped[float | None] = mapped_column(Float)
    abnormal_flag: Mapped[str | None] = mapped_column(String(1))
    findings: Mapped[str | None] = mapped_column(Text)
    conclusion: Mapped[str | None] = mapped_column(Text)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    eqa_passed: Mapped[bool | None] = mapped_column(Boolean)  # performing lab passed 室间质评
    cost_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    source_system: Mapped[str | None] = mapped_column(String(60))
    source_id: Mapped[str | None] = mapped_column(String(80))


class Prescription(Base):
    __tablename__ = "prescription"
    __table_args__ = (
        Index("ix_prescription_resident", "resident_id", "prescribed_at"),
        UniqueConstraint("source_system", "source_id", name="uq_prescription_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    encounter_id: Mapped[int | None] = mapped_column(
        ForeignKey("encounter.id", ondelete="SET NULL")
    )
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    prescribed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_system: Mapped[str | None] = mapped_column(String(60))
    source_id: Mapped[str | None] = mapped_column(String(80))


class PrescriptionItem(Base):
    __tablename__ = "prescription_item"
    __table_args__ = (CheckConstraint("days_supplied IS NULL OR days_supplied > 0", name="days"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prescription_id: Mapped[int] = mapped_column(
        ForeignKey("prescription.id", ondelete="CASCADE"), index=True
    )
    drug_code: Mapped[str | None] = mapped_column(String(40))  # 国家医保药品编码
    drug_name: Mapped[str] = mapped_column(String(100))
    dose: Mapped[str | None] = mapped_column(String(40))
    frequency: Mapped[str | None] = mapped_column(String(40))
    days_supplied: Mapped[int | None] = mapped_column(Integer)
    quantity: Mapped[float | None] = mapped_column(Float)
    cost_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")


class RecognitionRule(Base):
    """Whether a test's result is recognised across the group, for how long, and on what
    condition (a per-item table, 标准 2.1 of reference/standards.md). `group_id` NULL is the
    profile's default; a group's own row overrides it."""

    __tablename__ = "recognition_rule"
    __table_args__ = (UniqueConstraint("group_id", "item_code", name="uq_recognition_item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    category: Mapped[str] = mapped_column(String(12))
    item_code: Mapped[str] = mapped_column(String(40))
    item_name: Mapped[str] = mapped_column(String(100))
    recognizable: Mapped[bool] = mapped_column(Boolean, default=True)
    validity_days: Mapped[int] = mapped_column(Integer)
    requires_eqa: Mapped[bool] = mapped_column(Boolean, default=False)
    typical_cost_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    note: Mapped[str | None] = mapped_column(String(300))
    source: Mapped[str | None] = mapped_column(String(100))


class OrderDecision(Base):
    """What the doctor did when told a recognisable result exists: used it (a repeat
    avoided, with its cost) or ordered anyway with one of the national reasons."""

    __tablename__ = "order_decision"
    __table_args__ = (
        CheckConstraint("decision IN ('used_existing', 'ordered_anyway')", name="decision"),
        Index("ix_order_decision_group_time", "group_id", "decided_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    result_id: Mapped[int] = mapped_column(ForeignKey("result.id"))
    item_code: Mapped[str] = mapped_column(String(40))
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    decision: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str | None] = mapped_column(String(30))
    reason_text: Mapped[str | None] = mapped_column(String(300))
    avoided_cost_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class RecognitionOffer(Base):
    """A recognisable result shown to a doctor about to order the same test (the order check).
    One row per doctor, result and day, however often the check is repeated, so that offers the
    doctor never acted on are counted too (issue 3 §4: recognised, avoided and overridden)."""

    __tablename__ = "recognition_offer"
    __table_args__ = (
        UniqueConstraint("user_id", "result_id", "offered_on", name="uq_recognition_offer_daily"),
        Index("ix_recognition_offer_group_time", "group_id", "offered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    result_id: Mapped[int] = mapped_column(ForeignKey("result.id", ondelete="CASCADE"))
    item_code: Mapped[str] = mapped_column(String(40))
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    offered_on: Mapped[date] = mapped_column(Date)  # China date of `offered_at`
