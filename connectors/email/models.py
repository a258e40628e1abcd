"""The sent log: one row per message the SMTP server accepted, keyed by idempotency key; and
each recipe's alert state.

``email.send`` reads it before sending and writes it once the server has accepted the message,
so a retried or replayed step does not send the same message again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel


class EmailSentRow(SQLModel, table=True):
    __tablename__ = "email_sent"
    idempotency_key: str = Field(primary_key=True, max_length=200)
    workspace_id: str = Field(index=True, max_length=64)
    message_id: str = Field(max_length=200)
    accepted: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    refused: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    sent_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class AlertStateRow(SQLModel, table=True):
    """A recipe's failure alerts (``connectors/email/alerts.py``): when the last one went out,
    the failures held back for its digest, and the message decided but not yet known to be sent
    (``outbox``: sent, or found in the sent log, before anything else is decided)."""

    __tablename__ = "alert_state"
    recipe_uid: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(max_length=64)
    last_sent_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    last_run: str | None = Field(default=None, max_length=40)
    """The run whose failure was alerted at ``last_sent_at`` (a repeated job sends it once)."""
    pending: int = 0
    samples: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    digest_due_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    outbox: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
