"""Chronic-care tables: programme enrolments, follow-ups and long prescriptions. Every row
carries the group and institution it belongs to (DESIGN §6)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from caregrid.core.clock import now
from caregrid.core.db import Base, UTCDateTime

PROGRAMS = ("hypertension", "diabetes")
RISK_GRADES = ("low", "medium", "high")
ENROLMENT_SOURCES = ("diagnosis", "team")
FOLLOWUP_MODES = ("clinic", "home", "phone", "online")
FACE_TO_FACE_MODES = ("clinic", "home")


class ChronicEnrolment(Base):
    """A resident in the hypertension or diabetes registry. At most one active enrolment per
    resident and programme (partial unique index)."""

    __tablename__ = "chronic_enrolment"
    __table_args__ = (
        CheckConstraint(f"program IN {PROGRAMS!r}", name="program"),
        CheckConstraint(f"risk_grade IN {RISK_GRADES!r}", name="risk_grade"),
        CheckConstraint(f"source IN {ENROLMENT_SOURCES!r}", name="source"),
        CheckConstraint("status IN ('active', 'closed')", name="status"),
        Index(
            "uq_chronic_enrolment_active",
            "resident_id",
            "program",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_chronic_enrolment_institution", "institution_id", "program"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    program: Mapped[str] = mapped_column(String(12))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"), index=True)
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    enrolled_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(10))
    diagnosis_code: Mapped[str | None] = mapped_column(String(20))
    risk_grade: Mapped[str] = mapped_column(String(6), default="low")
    status: Mapped[str] = mapped_column(String(6), default="active")
    closed_on: Mapped[date | None] = mapped_column(Date)
    close_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class FollowUp(Base):
    """One follow-up (随访) with its readings and the rules engine's decision, kept as decided
    at the time (the clause that triggered it is stored with it)."""

    __tablename__ = "chronic_followup"
    __table_args__ = (
        CheckConstraint(f"mode IN {FOLLOWUP_MODES!r}", name="mode"),
        Index("ix_chronic_followup_enrolment_date", "enrolment_id", "followed_on"),
        Index("ix_chronic_followup_resident_date", "resident_id", "followed_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("chronic_enrolment.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    program: Mapped[str] = mapped_column(String(12))
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    followed_on: Mapped[date] = mapped_column(Date)
    mode: Mapped[str] = mapped_column(String(8))
    sbp: Mapped[int | None] = mapped_column(Integer)
    dbp: Mapped[int | None] = mapped_column(Integer)
    fasting_glucose: Mapped[float | None] = mapped_column(Float)
    medication: Mapped[str | None] = mapped_column(String(300))
    adherence: Mapped[str | None] = mapped_column(String(12))
    controlled: Mapped[bool] = mapped_column(Boolean)
    action: Mapped[str] = mapped_column(String(24))
    clause: Mapped[str] = mapped_column(String(200))
    next_due: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class LongPrescription(Base):
    """A long prescription (长期处方) for a stable chronic patient: at most 12 weeks, over 4
    weeks only with an assessment note (长期处方管理规范（试行）2021)."""

    __tablename__ = "chronic_long_prescription"
    __table_args__ = (
        CheckConstraint("weeks BETWEEN 1 AND 12", name="weeks"),
        CheckConstraint("weeks <= 4 OR assessment_note IS NOT NULL", name="assessment"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("chronic_enrolment.id"), index=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    drug_name: Mapped[str] = mapped_column(String(100))
    drug_class: Mapped[str] = mapped_column(String(30))
    weeks: Mapped[int] = mapped_column(Integer)
    assessment_note: Mapped[str | None] = mapped_column(String(500))
    prescribed_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
