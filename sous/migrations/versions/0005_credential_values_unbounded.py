"""Encrypted credential values are TEXT: a 10,000-character secret's Fernet token (about
13,400 characters, more for multi-byte text) did not fit VARCHAR(10000) on PostgreSQL.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.alter_column(
            "value_enc",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=10000),
            type_=sa.Text(),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.alter_column(
            "value_enc",
            existing_type=sa.Text(),
            type_=sqlmodel.sql.sqltypes.AutoString(length=10000),
            existing_nullable=False,
        )
