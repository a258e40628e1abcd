"""Sous as a BigCommerce single-click app: installed stores (bc_app_install), the users of each
store Sous has seen (bc_app_user) and the load payloads already used (bc_app_jwt).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "bc_app_install",
        sa.Column("store_hash", _text(64), nullable=False),
        sa.Column("store_id", _text(40), nullable=False),
        sa.Column("workspace_id", _text(64), nullable=False),
        sa.Column("scope", _text(2000), nullable=False),
        sa.Column("account_uuid", _text(64), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_email", _text(320), nullable=False),
        sa.Column("installed_by", sa.BigInteger(), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("store_hash"),
    )
    with op.batch_alter_table("bc_app_install", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bc_app_install_store_id"), ["store_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_bc_app_install_workspace_id"), ["workspace_id"], unique=False
        )
    op.create_table(
        "bc_app_user",
        sa.Column("store_hash", _text(64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("email", _text(320), nullable=False),
        sa.Column("locale", _text(35), nullable=True),
        sa.Column("is_owner", sa.Boolean(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_load_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("store_hash", "user_id"),
    )
    op.create_table(
        "bc_app_jwt",
        sa.Column("jti", _text(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti"),
    )
    with op.batch_alter_table("bc_app_jwt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bc_app_jwt_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bc_app_jwt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bc_app_jwt_expires_at"))
    op.drop_table("bc_app_jwt")
    op.drop_table("bc_app_user")
    with op.batch_alter_table("bc_app_install", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bc_app_install_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_bc_app_install_store_id"))
    op.drop_table("bc_app_install")
