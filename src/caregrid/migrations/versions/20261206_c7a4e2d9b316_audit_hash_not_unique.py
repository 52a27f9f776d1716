"""audit_entry.entry_hash without its unique index.

Nothing looks an entry up by its hash: `caregrid audit verify` walks the chain by seq and
recomputes every hash, which is what detects an edit. The unique index on a random 64-character
value cost every append a write at a random place of a B-tree as large as the log (measured on
a bulk import of 100,000 encounters with 88,317 audit entries on PostgreSQL: the audit step
took 1.1 s without it against 1.6-1.9 s with it), and on every request that reads a record.

On SQLite the table is rebuilt (its unique constraint cannot be dropped in place), which drops
its triggers; the append-only triggers are created again.

Revision ID: c7a4e2d9b316
Revises: 412270d185b1
Create Date: 2026-12-06 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "c7a4e2d9b316"
down_revision: str | Sequence[str] | None = "412270d185b1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sqlite_append_only() -> None:
    for event in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS audit_entry_no_{event.lower()}")
        op.execute(
            f"CREATE TRIGGER audit_entry_no_{event.lower()} BEFORE {event} ON audit_entry "
            "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"
        )


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("uq_audit_entry_entry_hash", "audit_entry", type_="unique")
        return
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_constraint("uq_audit_entry_entry_hash", type_="unique")
    _sqlite_append_only()


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.create_unique_constraint("uq_audit_entry_entry_hash", "audit_entry", ["entry_hash"])
        return
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_audit_entry_entry_hash", ["entry_hash"])
    _sqlite_append_only()
