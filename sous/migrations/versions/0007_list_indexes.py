"""Indexes for lists newest first: runs and events of a workspace by id (with the time, and an
event's store, for filters checked in the index), runs of a recipe by id, runs of a status by id,
and events of a type by id (replacing the index on the type alone, which no query used without
the workspace). Without them a page of the newest 50 sorted every run of the workspace.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op


revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index("ix_event_type")
        batch_op.create_index(
            "ix_event_ws_id", ["workspace_id", "id", "received_at", "store"], unique=False
        )
        batch_op.create_index("ix_event_ws_type", ["workspace_id", "type", "id"], unique=False)
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_index("ix_run_ws_status")
        batch_op.create_index("ix_run_ws_status", ["workspace_id", "status", "id"], unique=False)
        batch_op.create_index("ix_run_ws_id", ["workspace_id", "id", "created_at"], unique=False)
        batch_op.create_index("ix_run_recipe_id", ["recipe_uid", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_index("ix_run_recipe_id")
        batch_op.drop_index("ix_run_ws_id")
        batch_op.drop_index("ix_run_ws_status")
        batch_op.create_index("ix_run_ws_status", ["workspace_id", "status"], unique=False)
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index("ix_event_ws_type")
        batch_op.drop_index("ix_event_ws_id")
        batch_op.create_index("ix_event_type", ["type"], unique=False)
