"""Backorder lines keep the customer (to tell them when the ETA moves).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 12:09:37.374874
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("backorder_line", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("customer_email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True)
        )
        batch_op.add_column(
            sa.Column("customer_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("backorder_line", schema=None) as batch_op:
        batch_op.drop_column("customer_name")
        batch_op.drop_column("customer_email")
