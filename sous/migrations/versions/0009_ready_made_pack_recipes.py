"""Ready-made recipes installed with a pack are recorded as made from it (template_instance
with an empty template id), so an upgrade of the pack reaches them: rows for the recipes
created before, found by their source ``pack:NAME@VERSION``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 07:50:00.000000
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SOURCE = re.compile(r"^pack:(?P<name>[a-z0-9][a-z0-9_-]*)@(?P<version>[0-9A-Za-z.+-]+)$")
_recipe = sa.table(
    "recipe",
    sa.column("uid", sa.String),
    sa.column("workspace_id", sa.String),
    sa.column("slug", sa.String),
    sa.column("source", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
_instance = sa.table(
    "template_instance",
    sa.column("workspace_id", sa.String),
    sa.column("recipe_slug", sa.String),
    sa.column("recipe_uid", sa.String),
    sa.column("pack_name", sa.String),
    sa.column("pack_version", sa.String),
    sa.column("template_id", sa.String),
    sa.column("inputs", sa.JSON),
    sa.column("store", sa.String),
    sa.column("name", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    bind = op.get_bind()
    known = {
        (row.workspace_id, row.recipe_slug)
        for row in bind.execute(sa.select(_instance.c.workspace_id, _instance.c.recipe_slug))
    }
    rows = []
    for recipe in bind.execute(
        sa.select(_recipe).where(_recipe.c.source.like("pack:%"))
    ).mappings():
        match = _SOURCE.match(recipe["source"])
        if match is None or (recipe["workspace_id"], recipe["slug"]) in known:
            continue
        rows.append(
            {
                "workspace_id": recipe["workspace_id"],
                "recipe_slug": recipe["slug"],
                "recipe_uid": recipe["uid"],
                "pack_name": match["name"],
                "pack_version": match["version"],
                "template_id": "",
                "inputs": {},
                "store": None,
                "name": None,
                "created_at": recipe["created_at"],
                "updated_at": recipe["updated_at"],
            }
        )
    if rows:
        op.bulk_insert(_instance, rows)


def downgrade() -> None:
    op.execute(_instance.delete().where(_instance.c.template_id == ""))
