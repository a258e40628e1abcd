"""The scheduler's tables: how far each schedule and each poll has got.

Both are small (one row per schedule recipe, one per polled source and store) and written once
per firing or poll, after the events they produced are in the inbox: a crash in between makes
the scheduler compute the same firings again, and the inbox drops them as duplicates.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class ScheduleStateRow(SQLModel, table=True):
    """Up to when a schedule recipe is settled: every firing at or before ``last_scheduled_for``
    was sent, or dropped by its misfire policy, or predates the recipe's current version."""

    __tablename__ = "schedule_state"
    recipe_uid: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(max_length=64)
    recipe_version: int
    last_scheduled_for: datetime = _ts()
    updated_at: datetime = _ts()


class PollStateRow(SQLModel, table=True):
    """When the last successful poll of a source for one store began (its next ``since``).
    ``store`` is ``""`` for a poll that covers the whole workspace."""

    __tablename__ = "poll_state"
    source: str = Field(primary_key=True, max_length=80)
    workspace_id: str = Field(primary_key=True, max_length=64)
    store: str = Field(primary_key=True, max_length=64)
    since: datetime = _ts()
    updated_at: datetime = _ts()
