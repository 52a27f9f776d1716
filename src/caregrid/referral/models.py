"""Referral tables: the referral (FHIR ServiceRequest + its Task), its history of transitions,
and care episodes linking inpatient referrals inside the group (004 §四(三)2)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from caregrid.core.clock import now
from caregrid.core.db import Base, UTCDateTime

DIRECTIONS = ("up", "down")
STATUSES = (
    "draft",
    "submitted",
    "accepted",
    "rejected",
    "scheduled",
    "arrived",
    "completed",
    "cancelled",
    "expired",
)
CARE_TYPES = ("outpatient", "inpatient")
PRIORITIES = ("routine", "priority", "urgent")


class CareEpisode(Base):
    """One inpatient episode across members: the deductible (起付线) is counted once for all
    the inpatient referrals linked to it (004 §四(三)2 “在医联体内同一次住院转诊连续计算起付线”)."""

    __tablename__ = "care_episode"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Referral(Base):
    __tablename__ = "referral"
    __table_args__ = (
        CheckConstraint(f"direction IN {DIRECTIONS!r}", name="direction"),
        CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        CheckConstraint(f"care_type IN {CARE_TYPES!r}", name="care_type"),
        CheckConstraint(f"priority IN {PRIORITIES!r}", name="priority"),
        CheckConstraint(
            "to_institution_id IS NOT NULL OR external_institution IS NOT NULL", name="target"
        ),
        Index("ix_referral_resident", "resident_id"),
        Index("ix_referral_to_status", "to_institution_id", "status"),
        Index("ix_referral_from_status", "from_institution_id", "status"),
        Index("ix_referral_group_created", "group_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    direction: Mapped[str] = mapped_column(String(4))
    status: Mapped[str] = mapped_column(String(10), default="draft")
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    from_institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    from_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    to_institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    to_department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    # Outside the group (专科联盟, a provincial hospital): recorded with the hospital's name.
    external_institution: Mapped[str | None] = mapped_column(String(100))
    external_kind: Mapped[str | None] = mapped_column(String(20))
    care_type: Mapped[str] = mapped_column(String(12), default="outpatient")
    diagnosis_code: Mapped[str | None] = mapped_column(String(20))
    diagnosis_name: Mapped[str | None] = mapped_column(String(100))
    reason_code: Mapped[str] = mapped_column(String(30))
    reason_text: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    care_plan: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(10), default="routine")
    contracted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))
    admission_request_id: Mapped[int | None] = mapped_column(ForeignKey("admission_request.id"))
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registration.id"))
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    arrival_encounter_id: Mapped[int | None] = mapped_column(ForeignKey("encounter.id"))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    feedback: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("referral.id"))
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("care_episode.id"), index=True)
    team_task_id: Mapped[int | None] = mapped_column(Integer)


class ReferralEvent(Base):
    """One transition of a referral: who, when, from which state to which (FHIR Task history).
    Each is also written to the audit chain."""

    __tablename__ = "referral_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referral.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(12))
    from_status: Mapped[str | None] = mapped_column(String(10))
    to_status: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    username: Mapped[str] = mapped_column(String(60))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    note: Mapped[str | None] = mapped_column(Text)
