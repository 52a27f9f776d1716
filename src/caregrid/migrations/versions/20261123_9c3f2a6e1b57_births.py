"""births: a newborn resident linked to the mother's delivery admission.

Revision ID: 9c3f2a6e1b57
Revises: 5b1e0c7d9a42
Create Date: 2026-11-23 18:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c3f2a6e1b57"
down_revision: str | Sequence[str] | None = "5b1e0c7d9a42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "birth",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_encounter_id", sa.Integer(), nullable=False),
        sa.Column("newborn_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_encounter_id"],
            ["encounter.id"],
            name=op.f("fk_birth_delivery_encounter_id_encounter"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["newborn_id"], ["resident.id"], name=op.f("fk_birth_newborn_id_resident")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_birth")),
        sa.UniqueConstraint("newborn_id", name=op.f("uq_birth_newborn_id")),
    )
    with op.batch_alter_table("birth", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_birth_delivery_encounter_id"), ["delivery_encounter_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("birth", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_birth_delivery_encounter_id"))
    op.drop_table("birth")
