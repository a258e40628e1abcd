"""The API's own table: API keys. Stored hashed; the key itself is shown once, at creation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class ApiKeyRow(SQLModel, table=True):
    """An API key of a workspace. ``key_hash`` is the SHA-256 of the key (keys are random and
    long, so a fast hash is enough); ``prefix`` is a short, non-secret part shown in lists."""

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
