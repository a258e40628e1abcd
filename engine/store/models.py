"""The engine's tables (SQLModel). Schema changes go through Alembic (``sous/migrations``).

Times are stored as timezone-aware UTC. JSON columns hold documents exactly as the API shows
them. Every row that belongs to a tenant carries ``workspace_id`` and every query filters on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index),
    )


def _json() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


class Workspace(SQLModel, table=True):
    """A tenant. A client workspace of an agency names it in ``agency_id`` (the agency's own
    workspace); an archived one (``archived_at``) runs nothing and answers no key of its own.
    ``limits`` caps its usage per day (``runs``, ``steps``, ``store_requests``, ``emails``,
    ``http_calls``); ``None`` or a missing name is no limit."""

    __tablename__ = "workspace"
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    created_at: datetime = _ts()
    agency_id: str | None = Field(default=None, max_length=64, index=True)
    archived_at: datetime | None = _ts(nullable=True)
    limits: dict[str, int] | None = _json()


class StoreRow(SQLModel, table=True):
    """A connected BigCommerce store. The access token is encrypted at rest."""

    __tablename__ = "store"
    __table_args__ = (UniqueConstraint("workspace_id", "store_hash"),)
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(index=True, max_length=64)
    store_hash: str = Field(index=True, max_length=64)
    name: str = Field(default="", max_length=200)
    api_base_url: str = Field(max_length=500)
    access_token_enc: str = Field(max_length=2000)
    webhook_secret_enc: str = Field(max_length=2000)
    status: str = Field(default="active", max_length=20)
    created_at: datetime = _ts()
    last_event_at: datetime | None = _ts(nullable=True)
    info: dict[str, Any] | None = _json()


class RecipeRow(SQLModel, table=True):
    """The current version of a recipe; every version's document is in ``recipe_version``."""

    __tablename__ = "recipe"
    __table_args__ = (UniqueConstraint("workspace_id", "slug"),)
    uid: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(index=True, max_length=64)
    slug: str = Field(max_length=80)
    version: int = 1
    enabled: bool = True
    document: dict[str, Any] = _json()
    source: str = Field(default="api", max_length=300)
    disabled_reason: str | None = Field(default=None, max_length=1000)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class RecipeVersionRow(SQLModel, table=True):
    """One version of a recipe: its document, who saved it (``key:ID``, ``console:…``,
    ``system``) and why, when they said."""

    __tablename__ = "recipe_version"
    recipe_uid: str = Field(primary_key=True, max_length=40)
    version: int = Field(primary_key=True)
    document: dict[str, Any] = _json()
    created_at: datetime = _ts()
    author: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=500)


class EventRow(SQLModel, table=True):
    """The inbox: every event is written here before it is acknowledged."""

    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint("workspace_id", "dedup_key"),
        Index("ix_event_ws_received", "workspace_id", "received_at"),
        # Lists newest first (by id) step down these; the trailing columns let a time or
        # store filter be checked in the index, without reading the row.
        Index("ix_event_ws_id", "workspace_id", "id", "received_at", "store"),
        Index("ix_event_ws_type", "workspace_id", "type", "id"),
    )
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(max_length=64)
    store: str | None = Field(default=None, max_length=64)
    type: str = Field(max_length=120)
    payload: dict[str, Any] = _json()
    source: str = Field(max_length=20)
    dedup_key: str = Field(max_length=200)
    occurred_at: datetime = _ts()
    received_at: datetime = _ts()
    caused_by: dict[str, Any] | None = _json()
    target_recipe: str | None = Field(default=None, max_length=40)
    dispatched: bool = False


class MatchRow(SQLModel, table=True):
    """One dispatch decision: a recipe considered for an event, and why it matched or not."""

    __tablename__ = "match"
    event_id: str = Field(primary_key=True, max_length=40)
    recipe_uid: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(max_length=64)
    recipe_version: int
    matched: bool
    stage: str = Field(max_length=20)
    reason: dict[str, Any] | None = _json()
    run_id: str | None = Field(default=None, max_length=40)


class RunRow(SQLModel, table=True):
    __tablename__ = "run"
    __table_args__ = (
        UniqueConstraint("recipe_uid", "event_id"),
        Index("ix_run_ws_status", "workspace_id", "status", "id"),
        Index("ix_run_recipe_created", "recipe_uid", "created_at"),
        # Lists newest first (by id), of a workspace or of one recipe; created_at is there so
        # that a time window is checked in the index, without reading the row.
        Index("ix_run_ws_id", "workspace_id", "id", "created_at"),
        Index("ix_run_recipe_id", "recipe_uid", "id"),
    )
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(max_length=64)
    recipe_uid: str = Field(max_length=40)
    recipe_version: int
    event_id: str = Field(max_length=40, index=True)
    store: str | None = Field(default=None, max_length=64)
    status: str = Field(max_length=20)
    status_reason: str | None = Field(default=None, max_length=2000)
    concurrency_key: str | None = Field(default=None, max_length=200)
    next_step: int = 0
    depth: int = 0
    created_at: datetime = _ts()
    started_at: datetime | None = _ts(nullable=True)
    finished_at: datetime | None = _ts(nullable=True, index=True)
    due_at: datetime | None = _ts(nullable=True)
    context: dict[str, Any] | None = _json()


class StepRow(SQLModel, table=True):
    """The trace of one step of one run; written with the run's state change."""

    __tablename__ = "step"
    run_id: str = Field(primary_key=True, max_length=40)
    index: int = Field(primary_key=True)
    step_id: str = Field(max_length=80)
    use: str = Field(max_length=120)
    status: str = Field(max_length=20)
    attempts: int = 0
    input: dict[str, Any] | None = _json()
    output: dict[str, Any] | None = _json()
    error: str | None = Field(default=None, max_length=4000)
    started_at: datetime | None = _ts(nullable=True)
    finished_at: datetime | None = _ts(nullable=True)
    duration_ms: float | None = None
    output_sealed: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """The output as the step returned it, encrypted, when ``output`` (the trace) had secrets
    masked: later steps of a run resumed after a restart read this, not the masks."""
    attempt_log: list[dict[str, Any]] | None = _json()
    """Every failed attempt of the step: when it started, its error, and how long the runner
    waited before the next (``retry_in_s``; ``null`` after the last). ``None`` when the first
    attempt succeeded."""


class JobRow(SQLModel, table=True):
    """A unit of work on the embedded queue: dispatch an event, or run (part of) a run."""

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_ready", "status", "due_at"),)
    id: str = Field(primary_key=True, max_length=40)
    kind: str = Field(max_length=40)
    ref: str = Field(max_length=40)
    lock_key: str | None = Field(default=None, max_length=240)
    status: str = Field(max_length=20)
    attempts: int = 0
    due_at: datetime = _ts()
    created_at: datetime = _ts()
    claimed_by: str | None = Field(default=None, max_length=80)
    lease_until: datetime | None = _ts(nullable=True)


class CredentialRow(SQLModel, table=True):
    """A named secret of a workspace, encrypted (see :mod:`engine.store.vault`)."""

    __tablename__ = "credential"
    workspace_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(primary_key=True, max_length=100)
    value_enc: str = Field(default="", sa_column=Column(Text, nullable=False))
    """Unbounded: a Fernet token is about 4/3 of the value's UTF-8 bytes plus 76 characters, so
    no character bound on the value (the API takes up to 10,000) fits a fixed column."""
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class ApprovalRow(SQLModel, table=True):
    """A decision a run waits for (a ``core.approval`` step, see :mod:`engine.run.approval`):
    ``pending`` until a person approves or rejects it, or its time runs out (``timed_out``, the
    step's default decision), or its run is cancelled (``cancelled``)."""

    __tablename__ = "approval"
    __table_args__ = (Index("ix_approval_ws_status_id", "workspace_id", "status", "id"),)
    id: str = Field(primary_key=True, max_length=120)
    workspace_id: str = Field(max_length=64)
    run_id: str = Field(max_length=40, index=True)
    recipe_uid: str = Field(max_length=40)
    step_id: str = Field(max_length=80)
    title: str = Field(max_length=200)
    message: str = Field(default="", max_length=10_000)
    recipients: list[str] | None = _json()
    default_decision: str = Field(max_length=10)
    on_reject: str = Field(max_length=10)
    status: str = Field(max_length=20)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    decision: str | None = Field(default=None, max_length=10)
    decided_at: datetime | None = _ts(nullable=True)
    decided_by: str | None = Field(default=None, max_length=200)
    comment: str | None = Field(default=None, max_length=2000)
    timed_out: bool = False
