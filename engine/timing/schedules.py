"""Schedules as pure time arithmetic: when a schedule fires, and which firings are due now.

Nothing here reads a clock, the database or APScheduler. A :class:`Timetable` lists the moments
a schedule fires (a cron expression in a time zone, or a fixed interval from an anchor);
:func:`due_firings` takes the moment up to which a schedule is settled and the current time and
applies the misfire policy, so catch-up after downtime is the same code as an on-time firing and
is tested by passing times in. The shapes of poll sources (:class:`PollSource`) live here too.

Every time in and out of this module is timezone-aware UTC.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import Field

from engine.match.dispatcher import CompiledRecipe
from engine.model.events import NewEvent
from engine.registry import Params

COUNT_CAP = 10_000
"""Counting missed cron firings stops here (a minutely schedule down for a year)."""

_SEARCH_CAP = 1_000
"""Slots examined when looking for one that is not a daylight-saving repeat."""

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class Misfire(StrEnum):
    """What to do with firings whose time passed while Sous was not running.

    ``run_once`` fires the newest due firing only, ``run_all`` fires every due firing (the
    newest ``max_catch_up`` of them), ``skip`` fires only those still within the grace period.
    """

    RUN_ONCE = "run_once"
    RUN_ALL = "run_all"
    SKIP = "skip"


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive value (as SQLite returns them) is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    return utc(moment).isoformat()


def cron_expression(text: str) -> str:
    """The five-field expression for ``text`` (macros such as ``@daily`` expanded).

    Raises :class:`ValueError` with the reason when it is not a valid cron expression.
    """
    expression = MACROS.get(text.strip().lower(), " ".join(text.split()))
    fields = expression.split(" ")
    if len(fields) != 5:
        raise ValueError(
            f"{text!r} has {len(fields)} fields; "
            "use five: minute hour day-of-month month day-of-week"
        )
    if not croniter.is_valid(expression):
        try:
            croniter(expression)
        except Exception as exc:  # croniter's message names the bad field
            raise ValueError(f"{text!r}: {exc}") from None
        raise ValueError(repr(text))
    try:
        croniter(expression, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except Exception:
        raise ValueError(f"{text!r} never fires") from None
    return expression


def time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} (use an IANA name such as Europe/Amsterdam or UTC)") from None


class Timetable(Protocol):
    """The moments a schedule fires."""

    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after ``moment``, or ``None`` if there is none."""
        ...

    def newest(self, after: datetime, until: datetime, limit: int) -> tuple[list[datetime], int]:
        """The newest ``limit`` firings in ``(after, until]``, oldest first, and how many
        firings that interval holds in all (for cron, counted up to :data:`COUNT_CAP`)."""
        ...


@dataclass(frozen=True)
class CronTimetable:
    """A five-field cron expression read in a time zone.

    On the night clocks go back, a wall time that occurs twice fires once (the first time)
    unless the hour field is ``*``; on the night they go forward, a time that does not exist
    fires at the first minute after the jump (croniter's reading).
    """

    expression: str
    zone: ZoneInfo

    def _keep(self, slot: datetime) -> bool:
        repeated = slot.astimezone(self.zone).fold == 1
        return not repeated or self.expression.split(" ")[1] == "*"

    def next_after(self, moment: datetime) -> datetime | None:
        walker = croniter(self.expression, utc(moment).astimezone(self.zone))
        for _ in range(_SEARCH_CAP):
            slot = utc(walker.get_next(datetime))
            if slot > moment and self._keep(slot):
                return slot
        return None

    def newest(self, after: datetime, until: datetime, limit: int) -> tuple[list[datetime], int]:
        if until <= after:
            return [], 0
        walker = croniter(
            self.expression, (until + timedelta(microseconds=1)).astimezone(self.zone)
        )
        found: list[datetime] = []
        count = 0
        while count < COUNT_CAP:
            slot = utc(walker.get_prev(datetime))
            if slot <= after:
                break
            if slot > until or not self._keep(slot):
                continue
            count += 1
            if len(found) < limit:
                found.append(slot)
        found.reverse()
        return found, count


@dataclass(frozen=True)
class IntervalTimetable:
    """Every ``every`` from ``anchor`` on: ``anchor``, ``anchor + every``, … (none before)."""

    anchor: datetime
    every: timedelta

    def __post_init__(self) -> None:
        if self.every <= timedelta(0):
            raise ValueError("an interval must be positive")

    def _slot(self, k: int) -> datetime:
        return self.anchor + k * self.every

    def next_after(self, moment: datetime) -> datetime:
        k = max(0, (moment - self.anchor) // self.every + 1)
        return self._slot(k)

    def newest(self, after: datetime, until: datetime, limit: int) -> tuple[list[datetime], int]:
        if until < self.anchor or until <= after:
            return [], 0
        high = (until - self.anchor) // self.every
        low = max(0, (after - self.anchor) // self.every + 1)
        count = max(0, high - low + 1)
        first = max(low, high - limit + 1)
        return [self._slot(k) for k in range(first, high + 1)], count


@dataclass(frozen=True)
class Due:
    fire: list[datetime]
    """The firings to send now, oldest first."""
    skipped: int
    """Due firings the policy drops (counted up to :data:`COUNT_CAP` for cron)."""
    settled: datetime | None
    """The new ``last_scheduled_for``: the newest due firing, sent or dropped (``None``: none)."""


def due_firings(
    timetable: Timetable,
    last: datetime,
    now: datetime,
    *,
    misfire: Misfire,
    max_catch_up: int,
    grace: timedelta,
) -> Due:
    """Which firings in ``(last, now]`` to send, under ``misfire``.

    A firing within ``grace`` of ``now`` is on time; an older one was missed. ``run_once``
    sends the newest due firing (on time or missed), ``run_all`` the newest ``max_catch_up``,
    ``skip`` only the on-time ones (at most ``max_catch_up``). Whatever is not sent is dropped
    for good: the schedule is settled up to the newest due firing.
    """
    limit = max(1, max_catch_up)
    newest, count = timetable.newest(last, now, limit)
    if not newest:
        return Due([], 0, None)
    if misfire is Misfire.RUN_ONCE:
        fire = newest[-1:]
    elif misfire is Misfire.RUN_ALL:
        fire = newest
    else:
        fire = [slot for slot in newest if slot >= now - grace]
    return Due(fire, count - len(fire), newest[-1])


class ScheduleParams(Params):
    """Base of the ``with:`` model of every ``kind="schedule"`` trigger: the scheduler reads
    the misfire policy from it and asks it for the recipe's timetable."""

    misfire: Misfire = Field(
        default=Misfire.RUN_ONCE,
        description="Firings missed while Sous was down: run_once, run_all or skip",
    )
    max_catch_up: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="With run_all: send at most this many missed firings",
    )

    def timetable(self, anchor: datetime) -> Timetable:
        """The firings of this schedule. ``anchor`` is when the schedule took its current form
        (or last fired): interval schedules without a start count from it."""
        raise NotImplementedError


@dataclass(frozen=True)
class PollScope:
    """What one poll covers: a workspace, and one of its stores (``None``: all of it)."""

    workspace: str
    store: str | None = None


PollFetch = Callable[[PollScope, datetime | None], Awaitable[Sequence[NewEvent]]]
StoreLister = Callable[[str], Awaitable[Sequence[str]]]


@dataclass(frozen=True)
class PollSource:
    """A source without webhooks, asked for what changed since its last successful poll.

    ``fetch(scope, since)`` returns the new events (``since`` is ``None`` on the first poll of
    a scope: the source decides how far back to look). Give each event a ``dedup_key`` derived
    from the source's own data (an id and a modification time), so overlapping polls and
    retries store it once. The source is polled only while an enabled recipe listens to one of
    ``types`` (``prefix.*`` covers a prefix), once per store the recipe names; a recipe for
    every store is polled per store ``stores(workspace)`` lists, or once with ``store=None``
    when the source has no lister.
    """

    name: str
    every: timedelta
    fetch: PollFetch
    types: tuple[str, ...]
    stores: StoreLister | None = None

    def serves(self, type_: str) -> bool:
        return any(
            type_ == t or (t.endswith(".*") and type_.startswith(t[:-1])) for t in self.types
        )


def polled_event(source: str, scope: PollScope, new: NewEvent) -> NewEvent:
    """A polled event, kept inside its scope's workspace; without a dedup key, its type and
    payload make one (the same change seen twice is stored once)."""
    key = new.dedup_key
    if not key:
        body = json.dumps([new.type, new.payload], sort_keys=True, default=str)
        key = f"poll:{source}:{hashlib.sha256(body.encode()).hexdigest()[:40]}"
    return dataclasses.replace(
        new, workspace=scope.workspace, store=new.store or scope.store, source="poll", dedup_key=key
    )


def schedule_event(compiled: CompiledRecipe, slot: datetime, now: datetime) -> NewEvent:
    """The event of schedule recipe ``compiled`` firing for ``slot`` (deduplicated on the recipe
    and the slot, however many processes fire it)."""
    stores = compiled.recipe.stores()
    return NewEvent(
        type=compiled.recipe.trigger.type,
        payload={
            "scheduled_for": iso(slot),
            "fired_at": iso(now),
            "recipe": compiled.recipe.id,
        },
        workspace=compiled.workspace,
        store=stores[0] if stores is not None and len(stores) == 1 else None,
        source="schedule",
        dedup_key=f"schedule:{compiled.uid}:{iso(slot)}",
        occurred_at=slot,
        target_recipe=compiled.uid,
    )
