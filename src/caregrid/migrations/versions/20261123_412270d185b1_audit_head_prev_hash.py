"""audit_head.prev_hash: the hash before the last append, which the single-statement append on
PostgreSQL returns with the new seq and hash (PostgreSQL 15's RETURNING has no old values).

Revision ID: 412270d185b1
Revises: 9c3f2a6e1b57
Create Date: 2026-11-23 19:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "412270d185b1"
down_revision: str | Sequence[str] | None = "9c3f2a6e1b57"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("prev_hash")
