"""When the read a product's snapshot came from started (bc_snapshot.read_at), so processes
normalising changes of one product agree which read is the newest.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-10 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bc_snapshot", schema=None) as batch_op:
        batch_op.add_column(sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bc_snapshot", schema=None) as batch_op:
        batch_op.drop_column("read_at")
