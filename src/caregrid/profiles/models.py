"""Which policy profile this deployment runs, and the group's overrides of its values."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from caregrid.core.clock import now
from caregrid.core.db import Base, UTCDateTime


class ActiveProfile(Base):
    """One row: the profile chosen at `caregrid demo --profile` / `caregrid init --profile`."""

    __tablename__ = "active_profile"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(40))
    selected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class ProfileOverride(Base):
    """A group's own value for one profile parameter (DESIGN §4: a group can start from a
    profile and override values)."""

    __tablename__ = "profile_override"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    key: Mapped[str] = mapped_column(String(120))
    value_json: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(String(300))
    changed_by: Mapped[str | None] = mapped_column(String(60))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
