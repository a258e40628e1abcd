"""Alerts: each recipe's failure-alert state (when the last e-mail went out, the failures held
back for its digest, a message decided but not yet known to be sent). Traces: a step's
``attempt_log`` (every failed attempt: its time, error and the delay before the next).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_state",
        sa.Column("recipe_uid", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("samples", sa.JSON(), nullable=True),
        sa.Column("digest_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outbox", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("recipe_uid"),
    )
    with op.batch_alter_table("step", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempt_log", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("step", schema=None) as batch_op:
        batch_op.drop_column("attempt_log")
    op.drop_table("alert_state")
