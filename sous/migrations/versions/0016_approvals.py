"""Approvals (approval): the decisions runs wait for at core.approval steps.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-14 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "approval",
        sa.Column("id", _text(120), nullable=False),
        sa.Column("workspace_id", _text(64), nullable=False),
        sa.Column("run_id", _text(40), nullable=False),
        sa.Column("recipe_uid", _text(40), nullable=False),
        sa.Column("step_id", _text(80), nullable=False),
        sa.Column("title", _text(200), nullable=False),
        sa.Column("message", _text(10_000), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=True),
        sa.Column("default_decision", _text(10), nullable=False),
        sa.Column("on_reject", _text(10), nullable=False),
        sa.Column("status", _text(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", _text(10), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", _text(200), nullable=True),
        sa.Column("comment", _text(2000), nullable=True),
        sa.Column("timed_out", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.create_index(
            "ix_approval_ws_status_id", ["workspace_id", "status", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_approval_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_run_id"))
        batch_op.drop_index("ix_approval_ws_status_id")
    op.drop_table("approval")
