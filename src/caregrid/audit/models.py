"""The append-only, hash-chained audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from caregrid.core.db import Base, UTCDateTime


class AuditEntry(Base):
    """One access to or change of a resident's data (or a security event).

    `seq` is contiguous from 1; `entry_hash` = SHA-256(prev_hash + canonical fields), so editing
    or deleting any row breaks the chain from there on. Database triggers refuse UPDATE and
    DELETE (see the migration)."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_resident", "resident_id", "seq"),)

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    username: Mapped[str | None] = mapped_column(String(60))
    role: Mapped[str | None] = mapped_column(String(20))
    institution_id: Mapped[int | None] = mapped_column(Integer)
    resident_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(30))
    resource: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(12), default="allowed")
    basis: Mapped[str | None] = mapped_column(String(60))  # the care relationship that allowed it
    reason: Mapped[str | None] = mapped_column(String(500))
    detail: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row holding the chain's last seq and hash.

    Appending updates this row first, which takes a row lock (PostgreSQL) or the write lock
    (SQLite), so concurrent appends are serialised without a gap or a fork; `verify` compares
    it with the last entry, so deleting the newest entries is detected too."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    entry_hash: Mapped[str] = mapped_column(String(64))
    # the hash before the last append, returned by the single-statement append on PostgreSQL
    prev_hash: Mapped[str | None] = mapped_column(String(64))
