"""Tables for packs: the pack versions installed in a workspace, and which recipes were made
from which template (with the inputs used), so a pack upgrade can remake them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel


def _ts() -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=False))


def _json() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=False))


class InstalledPackRow(SQLModel, table=True):
    """One version of a pack in one workspace; several versions may sit side by side.

    ``files`` holds the pack's files as text by path (packs are small: at most 10 MB of
    YAML, JSON and Markdown), so every process reads the same pack from the database."""

    __tablename__ = "installed_pack"
    workspace_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(primary_key=True, max_length=64)
    version: str = Field(primary_key=True, max_length=64)
    description: str = Field(default="", max_length=2000)
    sha256: str = Field(max_length=64)
    source: str = Field(default="", max_length=1000)
    manifest: dict[str, Any] = _json()
    files: dict[str, str] = _json()
    installed_at: datetime = _ts()


READY_MADE = ""
"""The ``template_id`` of a pack's ready-made recipe (installed with the pack): an upgrade
replaces it with the recipe of the same id in the new version."""


class TemplateInstanceRow(SQLModel, table=True):
    """A recipe made from a pack: from a template (the template, its pack version, and the
    inputs used), or one of the pack's ready-made recipes (``template_id`` is
    :data:`READY_MADE`, with no inputs).

    ``recipe_uid`` tells a recipe that was deleted and made again by hand (a new uid) from the
    one this row describes."""

    __tablename__ = "template_instance"
    workspace_id: str = Field(primary_key=True, max_length=64)
    recipe_slug: str = Field(primary_key=True, max_length=80)
    recipe_uid: str = Field(max_length=40, index=True)
    pack_name: str = Field(max_length=64, index=True)
    pack_version: str = Field(max_length=64)
    template_id: str = Field(max_length=80)
    inputs: dict[str, Any] = _json()
    store: str | None = Field(default=None, max_length=64)
    name: str | None = Field(
        default=None, max_length=200, description="a name given instead of the template's"
    )
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
