"""The audit log (audit_log), and who saved each recipe version and why (recipe_version.author,
recipe_version.reason).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 09:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", _text(40), nullable=False),
        sa.Column("workspace_id", _text(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", _text(200), nullable=False),
        sa.Column("kind", _text(20), nullable=False),
        sa.Column("action", _text(40), nullable=False),
        sa.Column("target", _text(200), nullable=False),
        sa.Column("summary", _text(1000), nullable=False),
        sa.Column("reason", _text(500), nullable=True),
        sa.Column("diff", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)
        batch_op.create_index("ix_audit_ws_id", ["workspace_id", "id"], unique=False)
        batch_op.create_index("ix_audit_ws_kind_id", ["workspace_id", "kind", "id"], unique=False)
    with op.batch_alter_table("recipe_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("author", _text(200), nullable=True))
        batch_op.add_column(sa.Column("reason", _text(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recipe_version", schema=None) as batch_op:
        batch_op.drop_column("reason")
        batch_op.drop_column("author")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_ws_kind_id")
        batch_op.drop_index("ix_audit_ws_id")
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))
    op.drop_table("audit_log")
