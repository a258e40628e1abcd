"""The scheduler: schedule recipes fire on time and catch up after downtime; poll sources and
periodic jobs (retention) run on their intervals.

How time flows. :meth:`Scheduler.tick` is the whole behaviour: it reads the engine's clock, works
out from the ``schedule_state`` table which firings of each schedule recipe are due
(:func:`engine.timing.schedules.due_firings`, pure), ingests one event per firing, records how far
each schedule is settled, and starts the poll sources and periodic jobs whose time has come. Tests
call ``tick()`` after moving a :class:`~engine.clock.ManualClock`; nothing waits on wall time.

In production :meth:`Scheduler.start` also starts a thin APScheduler 3 ``AsyncIOScheduler`` driver.
APScheduler keeps wall time, so it only decides *when* to call ``tick()``: one job per schedule
recipe (``schedule:<uid>``), one per periodic job (``every:<name>``), each with a trigger that asks
this module for its next firing, plus a ``resync`` job that calls ``tick()`` every minute as a
safety net. Whatever APScheduler's own coalescing or misfire handling does, ``tick()`` decides what
fires, from the table and the clock.

A firing's event has the dedup key ``schedule:<uid>:<scheduled_for>``: a firing computed twice (a
second process, a crash between the ingest and the state write) is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import col, select

from engine.contracts import RecipeHost
from engine.match.dispatcher import CompiledRecipe
from engine.store.db import Tx
from engine.store.models import RecipeRow
from engine.store.schedule_models import PollStateRow, ScheduleStateRow
from engine.timing.schedules import (
    IntervalTimetable,
    PollScope,
    PollSource,
    ScheduleParams,
    Timetable,
    due_firings,
    polled_event,
    schedule_event,
    utc,
)

log = logging.getLogger("sous.scheduler")

SCHEDULE_STATE = ScheduleStateRow.__table__  # type: ignore[attr-defined]
POLL_STATE = PollStateRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SchedulerSettings:
    grace: timedelta = timedelta(minutes=1)
    """A firing this late is still on time (``misfire: skip`` sends it)."""
    resync_every: timedelta = timedelta(minutes=1)
    """How often the driver calls ``tick()`` regardless (picks up unsynced recipe changes)."""


@dataclass(frozen=True)
class Firing:
    recipe_uid: str
    scheduled_for: datetime
    event_id: str
    duplicate: bool


@dataclass
class TickReport:
    fired: list[Firing] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    """Recipe uid → due firings its misfire policy dropped."""
    started: list[str] = field(default_factory=list)
    """Periodic jobs (``poll:<source>``, ``retention``, …) started in the background."""
    errors: list[str] = field(default_factory=list)


@dataclass
class SyncResult:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    compiled: CompiledRecipe
    params: ScheduleParams
    last: datetime
    persisted: bool
    timetable: Timetable


@dataclass
class _Periodic:
    name: str
    timetable: IntervalTimetable
    run: Callable[[], Awaitable[object]]
    next_due: datetime
    task: asyncio.Task[None] | None = None


class Scheduler:
    def __init__(
        self,
        engine: RecipeHost,
        settings: SchedulerSettings | None = None,
        *,
        schedules: bool = True,
    ) -> None:
        """``schedules=False``: leave schedule recipes to another firer (the workers of the
        distributed mode fire them through procrastinate) and run only polls and periodic jobs."""
        self.engine = engine
        self.schedules = schedules
        self.db = engine.db
        self.clock = engine.clock
        self.settings = settings or SchedulerSettings()
        self.counters: dict[str, int] = {"firings": 0, "skipped": 0, "polls": 0, "polled": 0}
        self._plans: dict[str, _Plan] = {}
        self._periodic: dict[str, _Periodic] = {}
        self._lock = asyncio.Lock()
        self._driver: _Driver | None = None

    # -- registration ---------------------------------------------------------------------
    def every(
        self,
        name: str,
        every: timedelta,
        run: Callable[[], Awaitable[object]],
        first_after: timedelta | None = None,
    ) -> None:
        """Run ``run()`` every ``every``, first after ``first_after`` (default: ``every``),
        never two at once; a run still going when the next is due skips that one."""
        anchor = self.clock.now() + (every if first_after is None else first_after)
        periodic = _Periodic(name, IntervalTimetable(anchor, every), run, anchor)
        self._periodic[name] = periodic
        if self._driver is not None:
            self._driver.put(f"every:{name}", periodic.timetable.next_after)

    def add_poll_source(self, source: PollSource, first_after: timedelta = timedelta(0)) -> None:
        """Poll ``source`` every ``source.every`` (first after ``first_after``)."""
        self.every(f"poll:{source.name}", source.every, lambda: self._poll(source), first_after)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self, *, drive: bool = True) -> None:
        """Catch up on what was missed (call after ``engine.start()``), then, with ``drive``,
        let APScheduler call :meth:`tick` on time."""
        await self.tick()
        if drive:
            self._driver = _Driver(self)
            self._driver.start()

    async def stop(self) -> None:
        if self._driver is not None:
            self._driver.stop()
            self._driver = None
        tasks = [p.task for p in self._periodic.values() if p.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def settle(self) -> None:
        """Wait for the periodic jobs and polls running in the background (tests)."""
        tasks = [p.task for p in self._periodic.values() if p.task is not None]
        await asyncio.gather(*tasks)

    # -- recipes --------------------------------------------------------------------------
    def sync(self) -> SyncResult:
        """Bring the schedule plans (and the driver's jobs) in line with the engine's index of
        enabled recipes. Call it after recipes change; ``tick()`` calls it too."""
        wanted: dict[str, CompiledRecipe] = {}
        for uid, compiled in self.engine.index.by_uid.items():
            if not self.schedules or compiled.trigger.kind != "schedule":
                continue
            if not isinstance(compiled.trigger_params, ScheduleParams):
                log.error("trigger %s is a schedule without schedule params", compiled.trigger.type)
                continue
            wanted[uid] = compiled
        result = SyncResult()
        for uid in [u for u in self._plans if u not in wanted]:
            del self._plans[uid]
            result.removed.append(uid)
            if self._driver is not None:
                self._driver.remove(f"schedule:{uid}")
        fresh = [
            c
            for uid, c in wanted.items()
            if uid not in self._plans or self._plans[uid].compiled.version != c.version
        ]
        if fresh:
            self._plan(fresh, result)
        return result

    def _plan(self, fresh: list[CompiledRecipe], result: SyncResult) -> None:
        uids = [c.uid for c in fresh]
        with self.db.read_session() as s:
            states = {
                r.recipe_uid: r
                for r in s.exec(
                    select(ScheduleStateRow).where(col(ScheduleStateRow.recipe_uid).in_(uids))
                ).all()
            }
            changed = {
                r.uid: r
                for r in s.exec(select(RecipeRow).where(col(RecipeRow.uid).in_(uids))).all()
            }
        now = self.clock.now()
        for compiled in fresh:
            params = compiled.trigger_params
            assert isinstance(params, ScheduleParams)
            state = states.get(compiled.uid)
            resume = state is not None and state.recipe_version == compiled.version
            if state is not None and resume:
                last = utc(state.last_scheduled_for)
            else:  # a new or changed recipe owes nothing from before its current version
                row = changed.get(compiled.uid)
                known = row is not None and row.version == compiled.version
                last = min(now, utc(row.updated_at)) if row is not None and known else now
            plan = _Plan(compiled, params, last, resume, params.timetable(last))
            (result.updated if compiled.uid in self._plans else result.added).append(compiled.uid)
            self._plans[compiled.uid] = plan
            if self._driver is not None:
                self._driver.put(f"schedule:{compiled.uid}", plan.timetable.next_after)

    def next_firing(self, uid: str) -> datetime | None:
        """The next firing of a schedule recipe not yet sent (``None``: not scheduled)."""
        plan = self._plans.get(uid)
        return plan.timetable.next_after(plan.last) if plan is not None else None

    # -- the tick -------------------------------------------------------------------------
    async def tick(self, now: datetime | None = None) -> TickReport:
        """Send every due firing, and start every due poll and periodic job; ``now`` defaults
        to the engine's clock. Only in the process that leads (:mod:`engine.timing.leader`): with
        many ``sous serve`` replicas on one database, one of them does this work."""
        async with self._lock:
            report = TickReport()
            if not await self.engine.leadership.lead():
                return report  # another process fires, polls and cleans up
            self.sync()
            moment = utc(now) if now is not None else self.clock.now()
            for plan in list(self._plans.values()):
                try:
                    await self._fire(plan, moment, report)
                except Exception as exc:
                    log.exception("schedule %s did not fire", plan.compiled.recipe.id)
                    report.errors.append(f"{plan.compiled.recipe.id}: {exc}")
            for periodic in self._periodic.values():
                if periodic.next_due > moment:
                    continue
                periodic.next_due = periodic.timetable.next_after(moment)
                if periodic.task is not None and not periodic.task.done():
                    log.warning("%s is still running; this turn is skipped", periodic.name)
                    continue
                periodic.task = asyncio.create_task(self._periodic_run(periodic))
                report.started.append(periodic.name)
            return report

    async def _fire(self, plan: _Plan, now: datetime, report: TickReport) -> None:
        params = plan.params
        due = due_firings(
            plan.timetable,
            plan.last,
            now,
            misfire=params.misfire,
            max_catch_up=params.max_catch_up,
            grace=self.settings.grace,
        )
        for slot in due.fire:
            result = await self.engine.ingest(schedule_event(plan.compiled, slot, now))
            report.fired.append(Firing(plan.compiled.uid, slot, result.event_id, result.duplicate))
            self.counters["firings"] += 1
        if due.skipped:
            report.skipped[plan.compiled.uid] = due.skipped
            self.counters["skipped"] += due.skipped
            log.warning(
                "schedule %s: %d missed firing(s) dropped (misfire: %s)",
                plan.compiled.recipe.id,
                due.skipped,
                params.misfire.value,
            )
        if due.settled is None and plan.persisted:
            return
        settled = due.settled or plan.last
        row = {
            "recipe_uid": plan.compiled.uid,
            "workspace_id": plan.compiled.workspace,
            "recipe_version": plan.compiled.version,
            "last_scheduled_for": settled,
            "updated_at": now,
        }
        await self.db.writer.write(lambda tx: tx.insert(SCHEDULE_STATE, [row], upsert=True))
        plan.last, plan.persisted = settled, True

    async def _periodic_run(self, periodic: _Periodic) -> None:
        try:
            await periodic.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; it runs again at %s", periodic.name, periodic.next_due)

    async def _wake(self) -> None:
        try:
            await self.tick()
        except Exception:
            log.exception("scheduler tick failed")

    # -- polling --------------------------------------------------------------------------
    async def _poll(self, source: PollSource) -> None:
        for scope in await self._scopes(source):
            try:
                await self._poll_scope(source, scope)
            except Exception:
                log.exception("poll %s for %s failed; it is retried next time", source.name, scope)

    async def _scopes(self, source: PollSource) -> list[PollScope]:
        scopes: dict[PollScope, None] = {}
        everywhere: set[str] = set()
        for compiled in self.engine.index.by_uid.values():
            if not source.serves(compiled.recipe.trigger.type):
                continue
            stores = compiled.recipe.stores()
            if stores is not None:
                scopes.update((PollScope(compiled.workspace, store), None) for store in stores)
            elif source.stores is not None:
                everywhere.add(compiled.workspace)
            else:
                scopes[PollScope(compiled.workspace)] = None
        lister = source.stores
        if lister is not None:
            for workspace in sorted(everywhere):
                scopes.update(
                    (PollScope(workspace, store), None) for store in await lister(workspace)
                )
        return list(scopes)

    async def _poll_scope(self, source: PollSource, scope: PollScope) -> None:
        started = self.clock.now()
        key = {"source": source.name, "workspace_id": scope.workspace, "store": scope.store or ""}
        with self.db.read_session() as s:
            row = s.get(PollStateRow, (key["source"], key["workspace_id"], key["store"]))
            since = utc(row.since) if row is not None else None
        found = await source.fetch(scope, since)
        self.counters["polls"] += 1
        for new in found:
            await self.engine.ingest(polled_event(source.name, scope, new))
            self.counters["polled"] += 1

        def save(tx: Tx) -> None:
            tx.insert(POLL_STATE, [{**key, "since": started, "updated_at": started}], upsert=True)

        await self.db.writer.write(save)


class _Driver:
    """APScheduler 3 on the running event loop: it keeps wall time and calls ``tick()``."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._aps: Any = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def start(self) -> None:
        self._aps.start()
        for uid, plan in self._scheduler._plans.items():
            self.put(f"schedule:{uid}", plan.timetable.next_after)
        for name, periodic in self._scheduler._periodic.items():
            self.put(f"every:{name}", periodic.timetable.next_after)
        every = self._scheduler.settings.resync_every.total_seconds()
        self._aps.add_job(
            self._scheduler._wake, IntervalTrigger(seconds=every, timezone=UTC), id="resync"
        )

    def put(self, job_id: str, next_after: Callable[[datetime], datetime | None]) -> None:
        self._aps.add_job(
            self._scheduler._wake, _NextTrigger(next_after), id=job_id, replace_existing=True
        )

    def remove(self, job_id: str) -> None:
        with contextlib.suppress(JobLookupError):
            self._aps.remove_job(job_id)

    def jobs(self) -> dict[str, datetime | None]:
        return {job.id: job.next_run_time for job in self._aps.get_jobs()}

    def stop(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=False)


class _NextTrigger(BaseTrigger):  # type: ignore[misc]
    """An APScheduler trigger that asks a timetable for the next firing."""

    def __init__(self, next_after: Callable[[datetime], datetime | None]) -> None:
        self._next_after = next_after

    def get_next_fire_time(self, previous: datetime | None, now: datetime) -> datetime | None:
        if previous is None:
            return self._next_after(now - timedelta(microseconds=1))
        return self._next_after(previous)

    def __repr__(self) -> str:
        return "<timetable trigger>"
