"""The sent log: one row per message the SMTP server accepted, keyed by idempotency key.

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
