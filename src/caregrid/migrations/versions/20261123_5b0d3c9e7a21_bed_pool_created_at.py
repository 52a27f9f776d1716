"""bed_pool.created_at: when a ward's beds entered the pool, so the reserved bed share has a
history (NULL for pools created before it was recorded: counted in every period).

Revision ID: 5b0d3c9e7a21
Revises: aee03f464735
Create Date: 2026-11-23 18:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import caregrid.core.db

revision: str = "5b0d3c9e7a21"
down_revision: str | Sequence[str] | None = "aee03f464735"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bed_pool", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("created_at", caregrid.core.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("bed_pool", schema=None) as batch_op:
        batch_op.drop_column("created_at")
