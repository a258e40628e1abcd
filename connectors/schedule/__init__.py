"""Time-based triggers: ``schedule.cron`` and ``schedule.interval``.

A schedule recipe is fired by the scheduler (:mod:`engine.timing.scheduler`), one event per firing,
addressed to that recipe alone::

    trigger:
      type: schedule.cron
      with: {cron: "0 8 * * MON", timezone: Europe/Amsterdam, misfire: run_once}

    trigger:
      type: schedule.interval
      with: {every: 15m, start_at: "2026-12-01T06:00:00+01:00", misfire: skip}

The event payload is ``{scheduled_for, fired_at, recipe}`` (ISO times in UTC, the recipe's id).
See ``docs/schedules.md``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from engine import (
    Connector,
    CronTimetable,
    Event,
    IntervalTimetable,
    ScheduleParams,
    Timetable,
    TriggerSpec,
    cron_expression,
    parse_duration,
    time_zone,
    utc,
)

MIN_INTERVAL = timedelta(minutes=1)
MAX_INTERVAL = timedelta(days=366)


class CronParams(ScheduleParams):
    cron: str = Field(
        max_length=200,
        description="Five fields: minute hour day-of-month month day-of-week (or @daily, @hourly…)",
        examples=["0 8 * * MON", "*/15 9-17 * * 1-5", "@daily"],
    )
    timezone: str = Field(
        default="UTC", max_length=64, description="IANA time zone the cron reads in"
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            return cron_expression(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "cron", "not a valid cron expression: {reason}", {"reason": str(exc)}
            ) from None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            time_zone(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "timezone", "not a known time zone: {reason}", {"reason": str(exc)}
            ) from None
        return value

    def timetable(self, anchor: datetime) -> Timetable:
        return CronTimetable(self.cron, time_zone(self.timezone))


class IntervalParams(ScheduleParams):
    every: str | int = Field(
        description="How often: seconds, or text such as 15m, 1h30m, 2d (at least one minute)",
        examples=["15m", 3600],
    )
    start_at: datetime | None = Field(
        default=None,
        description="ISO time of the first firing (UTC when it names no offset); firings then "
        "fall on start_at + n x every. Without it they count from when the recipe was enabled.",
    )

    @field_validator("every")
    @classmethod
    def _every(cls, value: str | int) -> str | int:
        try:
            every = parse_duration(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "duration", "not a valid interval: {reason}", {"reason": str(exc)}
            ) from None
        if not MIN_INTERVAL <= every <= MAX_INTERVAL:
            raise PydanticCustomError(
                "duration", "an interval must be between 1 minute and 366 days"
            )
        return value

    @field_validator("start_at")
    @classmethod
    def _start(cls, value: datetime | None) -> datetime | None:
        return utc(value) if value is not None else None

    @property
    def period(self) -> timedelta:
        return parse_duration(self.every)

    def timetable(self, anchor: datetime) -> Timetable:
        return IntervalTimetable(self.start_at or anchor, self.period)


class SchedulePayload(BaseModel):
    scheduled_for: str = Field(description="When this firing was due (ISO, UTC)")
    fired_at: str = Field(description="When the scheduler sent it (ISO, UTC); later after downtime")
    recipe: str = Field(description="The id of the recipe the firing is for")


def _addressed(params: Any, event: Event) -> str | None:
    """Schedule events are sent by the scheduler to one recipe; a stray one fires nothing."""
    if event.target_recipe is None and event.source != "dry-run":
        return "schedule events are sent by the scheduler to one recipe; this one named none"
    return None


_SAMPLE = {
    "scheduled_for": datetime(2026, 11, 30, 7, 0, tzinfo=UTC).isoformat(),
    "fired_at": datetime(2026, 11, 30, 7, 0, 0, 120_000, tzinfo=UTC).isoformat(),
    "recipe": "weekly-restock-report",
}

CONNECTOR = Connector(
    name="schedule",
    description="Recipes that run on a timetable (cron or a fixed interval)",
    triggers=(
        TriggerSpec(
            type="schedule.cron",
            description="Fires on a cron timetable in a time zone",
            payload=SchedulePayload,
            sample=_SAMPLE,
            params=CronParams,
            filter=_addressed,
            kind="schedule",
        ),
        TriggerSpec(
            type="schedule.interval",
            description="Fires every fixed interval (at least a minute)",
            payload=SchedulePayload,
            sample=_SAMPLE,
            params=IntervalParams,
            filter=_addressed,
            kind="schedule",
        ),
    ),
)
