"""The fields of products, variants, orders and customers last seen (bc_snapshot.fields), so an
update event carries the previous values of the fields that changed.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-09 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bc_snapshot", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fields", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bc_snapshot", schema=None) as batch_op:
        batch_op.drop_column("fields")
