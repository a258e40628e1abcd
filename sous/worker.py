"""``sous worker``: run recipes from the shared PostgreSQL queue, without the HTTP server.

Distributed mode (``SOUS_DATABASE_URL=postgresql+psycopg://…``, ``SOUS_QUEUE=procrastinate``):
``sous migrate`` prepares the database once, ``sous serve`` takes events in, and any number of
``sous worker`` processes, on any number of machines, take jobs from procrastinate's table. A
worker also fires the schedules (see :class:`ScheduleFirer`): every worker computes the same
firings, and procrastinate's periodic defers let exactly one of them through.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine as SqlEngine, func, select

from engine import Engine
from engine.clock import Clock
from engine.errors import RegistryError
from engine.queue.base import Job, JobQueue
from engine.queue.procrastinate import ProcrastinateJobQueue, QueueTuning, install_schema
from engine.run.jobs import complete
from engine.store.db import Database
from engine.store.models import RecipeRow
from sous.container import build
from sous.logs import configure_logging
from sous.settings import Settings, load_settings

log = logging.getLogger("sous.worker")

SCHEDULE_JOB = "schedule"


class QueueSettings(BaseSettings):
    """Tuning of the procrastinate queue, from ``SOUS_QUEUE_*`` variables (real seconds)."""

    model_config = SettingsConfigDict(env_prefix="SOUS_QUEUE_", extra="ignore")

    name: str = "sous"
    heartbeat: float = Field(default=10.0, gt=0)
    stalled_after: float = Field(default=30.0, gt=0)
    poll: float = Field(default=2.0, gt=0)
    fetchers: int = Field(default=4, ge=1, le=64)
    reload: float = Field(
        default=5.0, gt=0, description="how often workers look for recipe changes"
    )

    def tuning(self) -> QueueTuning:
        return QueueTuning(self.name, self.heartbeat, self.stalled_after, self.poll, self.fetchers)


def make_queue(settings: Settings, db: Database, clock: Clock) -> JobQueue | None:
    """The queue ``settings`` ask for; ``None`` for the engine's embedded default."""
    if settings.queue != "procrastinate":
        return None
    if db.is_sqlite:
        raise SystemExit("sous: SOUS_QUEUE=procrastinate needs a PostgreSQL SOUS_DATABASE_URL")
    return ProcrastinateJobQueue(db, clock, QueueSettings().tuning())


def migrate_queue(settings: Settings, engine: SqlEngine) -> str | None:
    """For ``sous migrate``: install or upgrade procrastinate's schema in distributed mode."""
    if settings.queue != "procrastinate":
        return None
    if engine.dialect.name != "postgresql":
        raise SystemExit("sous: SOUS_QUEUE=procrastinate needs a PostgreSQL SOUS_DATABASE_URL")
    return install_schema(engine)


# -- schedules ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    uid: str
    workspace: str
    trigger: str
    timetable: Any
    misfire: Any
    max_catch_up: int
    since: datetime
    """When the recipe took its current form: earlier firings are not its own."""


def schedules_of(engine: Engine) -> list[Schedule]:
    """Every enabled recipe whose trigger is a schedule (``kind="schedule"``)."""
    from engine.timing.schedules import ScheduleParams, utc

    found = []
    for stored in engine.recipes.list(enabled=True):
        trigger = stored.recipe.trigger
        try:
            spec = engine.registry.trigger(trigger.type)
        except RegistryError:  # its connector is not installed here
            continue
        if spec.kind != "schedule":
            continue
        params = spec.params.model_validate(trigger.with_)
        if not isinstance(params, ScheduleParams):
            continue
        since = utc(stored.updated_at)
        timetable = params.timetable(since)
        found.append(
            Schedule(
                stored.uid,
                stored.workspace,
                trigger.type,
                timetable,
                params.misfire,
                params.max_catch_up,
                since,
            )
        )
    return found


class ScheduleFirer:
    """Fires schedules through procrastinate's periodic defers, one job per (recipe, time).

    Every worker runs one. Each computes the due firings of every schedule from its clock and
    calls ``procrastinate_defer_periodic_job_v2`` with the recipe's uid as ``periodic_id`` and
    the firing time as ``defer_timestamp``: a unique key lets the first worker's job in and
    turns the others away. The job then ingests the schedule's event with the dedup key
    ``schedule:<uid>:<time>``, so even a firing deferred twice (a worker far behind, after
    procrastinate pruned the older defers) makes one event and one run.
    """

    def __init__(
        self, engine: Engine, queue: ProcrastinateJobQueue, grace: timedelta = timedelta(minutes=10)
    ) -> None:
        self.engine = engine
        self.queue = queue
        self.grace = grace
        self._settled: dict[str, datetime] = {}

    async def tick(self, schedules: list[Schedule], now: datetime) -> list[str]:
        """Defer every firing due at ``now``; return the ids of the jobs this process made."""
        from engine.timing.schedules import due_firings, iso

        made = []
        for schedule in schedules:
            last = self._settled.get(schedule.uid) or max(schedule.since, now - self.grace)
            due = due_firings(
                schedule.timetable,
                last,
                now,
                misfire=schedule.misfire,
                max_catch_up=schedule.max_catch_up,
                grace=self.grace,
            )
            for when in due.fire:
                ref = f"{schedule.uid}@{iso(when)}"
                job_id = await self.queue.defer_periodic(
                    SCHEDULE_JOB, ref, schedule.uid, int(when.timestamp())
                )
                if job_id is not None:
                    made.append(job_id)
            if due.settled is not None:
                self._settled[schedule.uid] = due.settled
        return made

    async def handle(self, job: Job) -> None:
        """The job of one firing: the schedule's event into the inbox (the same event, and dedup
        key, as the embedded scheduler's), then the job done."""
        from engine.timing.schedules import schedule_event

        uid, _, when = job.ref.partition("@")
        stored = self.engine.recipes.by_uid(uid)
        if stored is not None and stored.enabled:
            compiled = self.engine.compile(stored)
            slot = datetime.fromisoformat(when)
            await self.engine.ingest(schedule_event(compiled, slot, self.engine.clock.now()))
        await complete(self.engine.db, self.queue, self.engine.clock, job)

    async def run(self, refresh: float = 30.0) -> None:
        """Tick whenever a schedule is due (and every ``refresh`` seconds, for new recipes)."""
        clock = self.engine.clock
        while True:
            try:
                schedules = schedules_of(self.engine)
                await self.tick(schedules, clock.now())
                now = clock.now()
                upcoming = [t for s in schedules if (t := s.timetable.next_after(now)) is not None]
                wait = min([refresh, *((t - now).total_seconds() for t in upcoming)])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("firing schedules failed; trying again")
                wait = refresh
            await clock.sleep(max(wait, 0.05))


# -- the command ----------------------------------------------------------------------------
async def run_worker(
    settings: Settings, *, alive_file: Path | None = None, stop: asyncio.Event | None = None
) -> int:
    """Run the engine's workers and the schedule firer until ``stop`` (or SIGTERM/SIGINT)."""
    from sous.alerts import install_alerts
    from sous.serve import freeze_heap
    from sous.wiring import wire

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    tuning = QueueSettings()
    container = build(settings, migrate=False)  # the schema is left to `sous migrate`
    queue = container.engine.queue
    if not isinstance(queue, ProcrastinateJobQueue):
        raise SystemExit(
            "sous worker: set SOUS_QUEUE=procrastinate and a PostgreSQL SOUS_DATABASE_URL"
        )
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(container.db.aclose)
        await wire(container, stack)
        install_alerts(container)
        firer = ScheduleFirer(container.engine, queue)
        container.engine.handle(SCHEDULE_JOB, firer.handle)
        await container.engine.start()
        stack.push_async_callback(container.engine.stop)
        side = [
            asyncio.create_task(firer.run(), name="sous-schedules"),
            asyncio.create_task(
                _keep_recipes_fresh(container.engine, tuning.reload), name="sous-recipes"
            ),
        ]
        if alive_file is not None:
            touch = _touch(alive_file, tuning.heartbeat, queue.beating)
            side.append(asyncio.create_task(touch, name="sous-alive"))
        freeze_heap()
        log.warning(
            "sous worker %s is taking jobs (%d at a time)", queue.worker_id, settings.workers
        )
        await stop.wait()
        for task in side:
            task.cancel()
        for task in side:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        _log_counts(container)
    return 0


def _log_counts(container: Any) -> None:
    """On the way out, what this worker's BigCommerce connector did (normalisation counts and
    store requests), as one line: a worker serves no ``/metrics`` of its own."""
    from connectors.bigcommerce.wiring import BigCommerceRuntime

    runtime = container.services.find(BigCommerceRuntime)
    if runtime is None:
        return
    counts = {**runtime.counters(), **_store_totals(runtime.metrics())}
    log.warning("sous worker counts: %s", json.dumps(counts, sort_keys=True))


def _store_totals(per_store: dict[str, dict[str, float]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for values in per_store.values():
        for name, value in values.items():
            totals[f"store_{name}"] = totals.get(f"store_{name}", 0) + int(value)
    return totals


async def _keep_recipes_fresh(engine: Engine, every: float) -> None:
    """Reload the recipe index when recipes change: runs emit events that this worker
    dispatches, and schedules come from it."""
    seen = _recipes_mark(engine)
    while True:
        await asyncio.sleep(every)
        try:
            mark = _recipes_mark(engine)
            if mark != seen:
                seen = mark
                engine.reload()
        except Exception as exc:
            log.warning("could not check for recipe changes: %s", exc)


def _recipes_mark(engine: Engine) -> tuple[Any, ...]:
    with engine.db.engine.connect() as conn:
        row = conn.execute(select(func.count(), func.max(RecipeRow.updated_at))).one()
    return tuple(row)


async def _touch(path: Path, every: float, healthy: Callable[[], bool]) -> None:
    """For container health checks (``python -m sous.health``): the file is touched while
    ``healthy()`` (the queue's heartbeats reach PostgreSQL), so its age tells whether this
    worker's event loop runs and its database answers."""
    while True:
        if healthy():
            await asyncio.to_thread(path.touch)
        await asyncio.sleep(every)


def cmd_worker(args: argparse.Namespace) -> int:
    settings = load_settings(
        database_url=args.database_url, workers=args.workers, queue="procrastinate"
    )
    configure_logging(settings.log_level)
    found = args.alive_file or os.environ.get("SOUS_ALIVE_FILE")
    alive = Path(found) if found else None
    return asyncio.run(run_worker(settings, alive_file=alive))


def main(argv: list[str] | None = None) -> int:
    from sous.cli import register_worker

    parser = argparse.ArgumentParser(prog="sous")
    register_worker(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    handler = args.handler
    return int(handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
