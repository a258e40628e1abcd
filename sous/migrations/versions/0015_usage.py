"""Usage per workspace, day, store and recipe (usage_day): runs, steps, store requests,
e-mails and HTTP calls.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "usage_day",
        sa.Column("workspace_id", _text(64), nullable=False),
        sa.Column("day", _text(10), nullable=False),
        sa.Column("store", _text(64), nullable=False),
        sa.Column("recipe", _text(80), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("store_requests", sa.Integer(), nullable=False),
        sa.Column("emails", sa.Integer(), nullable=False),
        sa.Column("http_calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "day", "store", "recipe"),
    )
    with op.batch_alter_table("usage_day", schema=None) as batch_op:
        batch_op.create_index("ix_usage_ws_day", ["workspace_id", "day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("usage_day", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_ws_day")
    op.drop_table("usage_day")
