"""Accounts, their sessions and tokens, and emergency (break-the-glass) grants."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from caregrid.core.clock import now
from caregrid.core.db import Base, UTCDateTime

ROLES = (
    "admin",
    "group_manager",
    "coordinator",
    "doctor",
    "centre_staff",
    "pharmacist",
    "insurance_officer",
    "commission_viewer",
)


class User(Base):
    __tablename__ = "app_user"
    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(60))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class AuthSession(Base):
    """A web session (cookie) or an API bearer token. Only a SHA-256 of the secret is kept."""

    __tablename__ = "auth_session"
    __table_args__ = (CheckConstraint("kind IN ('web', 'api')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    kind: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EmergencyAccess(Base):
    """Break-the-glass: a time-limited grant to one resident's record, with the reason given."""

    __tablename__ = "emergency_access"
    __table_args__ = (Index("ix_emergency_access_lookup", "user_id", "resident_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    reason: Mapped[str] = mapped_column(String(500))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
