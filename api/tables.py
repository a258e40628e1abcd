"""The API's own tables: API keys (stored hashed; the key itself is shown once, at creation),
console sessions and workspace settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, true
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class ApiKeyRow(SQLModel, table=True):
    """An API key of a workspace. ``key_hash`` is the SHA-256 of the key (keys are random and
    long, so a fast hash is enough); ``prefix`` is a short, non-secret part shown in lists.

    An ``agency`` key also acts in the client workspaces of its own (those whose ``agency_id``
    is the key's workspace), one at a time, named by the ``Sous-Workspace`` header. ``stores``,
    when set, limits the key to those stores (their hashes)."""

    __tablename__ = "api_key"
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(index=True, max_length=64)
    name: str = Field(default="", max_length=200)
    prefix: str = Field(max_length=20)
    key_hash: str = Field(unique=True, max_length=64)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()
    last_used_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)
    agency: bool = Field(default=False)
    stores: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class ConsoleSessionRow(SQLModel, table=True):
    """A signed-in console visitor. ``id`` is the SHA-256 of the session token held in the
    visitor's cookie (the token itself is never stored). A session opened with an API key ends
    with the key (``key_id``); one opened for a store's user (``user_id``) has no key. The
    CSRF token is useless without the cookie, so it is kept as is."""

    __tablename__ = "console_session"
    id: str = Field(primary_key=True, max_length=64)
    workspace_id: str = Field(index=True, max_length=64)
    key_id: str | None = Field(default=None, index=True, max_length=40)
    user_id: str | None = Field(default=None, max_length=200)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _ts()
    last_seen_at: datetime = _ts()
    expires_at: datetime = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )


class WorkspaceSettingsRow(SQLModel, table=True):
    """A workspace's own settings, where they differ from the process's (``SOUS_*``)."""

    __tablename__ = "workspace_settings"
    workspace_id: str = Field(primary_key=True, max_length=64)
    staff_email: str | None = Field(default=None, max_length=320)
    alerts: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    """Whether failed runs and auto-disabled recipes are e-mailed to the staff address."""
    updated_at: datetime = _ts()


class LiveSequenceRow(SQLModel, table=True):
    """Distributed mode: the id of the last live notification any process announced (one row,
    ``id`` 1). Every ``NOTIFY`` of the live stream takes its messages' ids from here in the
    transaction that sends it, so every process numbers the stream the same way (see
    :mod:`sous.live`)."""

    __tablename__ = "live_sequence"
    id: int = Field(primary_key=True)
    last_id: int = Field(sa_column=Column(BigInteger, nullable=False))
