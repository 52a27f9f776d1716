"""Encounters: a visit of a resident at a member. The shared-record issue extends this table
with diagnoses, procedures and costs; the foundation needs it as the first source of care
relationships (an encounter at the user's institution)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from caregrid.core.db import Base, UTCDateTime

ENCOUNTER_CLASSES = ("outpatient", "emergency", "inpatient")


class Encounter(Base):
    __tablename__ = "encounter"
    __table_args__ = (
        CheckConstraint(f"encounter_class IN {ENCOUNTER_CLASSES!r}", name="class"),
        Index("ix_encounter_resident_institution", "resident_id", "institution_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    encounter_class: Mapped[str] = mapped_column(String(12))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source_system: Mapped[str | None] = mapped_column(String(60))
    source_id: Mapped[str | None] = mapped_column(String(80))
