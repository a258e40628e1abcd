"""An index for a store's backorder lines oldest first, with their status (the console's
backorders page and the backlog read the oldest open lines): a walk down it stops after the lines
a page needs, where the page sorted every open line of the store.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 13:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("backorder_line", schema=None) as batch_op:
        batch_op.create_index(
            "ix_backorder_line_open",
            ["workspace_id", "store", "ordered_at", "order_id", "product_id", "status"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("backorder_line", schema=None) as batch_op:
        batch_op.drop_index("ix_backorder_line_open")
