"""Step rows keep the output encrypted when their trace masks secrets.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 12:44:29.195156
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("step", schema=None) as batch_op:
        batch_op.add_column(sa.Column("output_sealed", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("step", schema=None) as batch_op:
        batch_op.drop_column("output_sealed")
