"""Scorecard tables: the group's self-assessments of the 评判标准 criteria (001 附件3,
002 附件2) and the documents uploaded as evidence. Assessments are never updated: each save is
a new row, so the history of a criterion's score is the list of its rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from caregrid.core.clock import now
from caregrid.core.db import Base, UTCDateTime

LEVELS = ("met", "partly", "not_met")


class ScorecardAssessment(Base):
    __tablename__ = "scorecard_assessment"
    __table_args__ = (
        CheckConstraint(f"level IN {LEVELS!r}", name="level"),
        CheckConstraint("criterion_number >= 1", name="criterion"),
        Index(
            "ix_scorecard_assessment_lookup",
            "group_id",
            "profile_id",
            "period",
            "criterion_number",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("med_group.id"))
    profile_id: Mapped[str] = mapped_column(String(40))
    period: Mapped[str] = mapped_column(String(10))  # 2025, 2025Q2
    criterion_number: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text)  # the self-assessment (自评说明)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    username: Mapped[str] = mapped_column(String(60))
    assessed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class ScorecardDocument(Base):
    __tablename__ = "scorecard_document"
    __table_args__ = (
        Index("ix_scorecard_document_lookup", "group_id", "profile_id", "criterion_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("med_group.id"))
    profile_id: Mapped[str] = mapped_column(String(40))
    criterion_number: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    username: Mapped[str] = mapped_column(String(60))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
