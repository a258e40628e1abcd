"""The engine: ingest → dispatch → admission → queue → run, wired together.

:meth:`Engine.ingest` writes the event to the inbox and, in the same transaction, the dispatch
decisions, the runs they start and those runs' jobs; it returns only after the commit, so a
caller can acknowledge the event once ``ingest`` returns. Each new run goes through flood
protection and its recipe's mode (:mod:`engine.modes`): it starts (its job is written with it),
waits its turn, or is recorded ``skipped`` or ``held``. Workers take run jobs from the queue
and hand them to the :class:`~engine.runner.Runner`.

Operations on runs from outside (the API): :meth:`Engine.replay`, :meth:`Engine.replay_many`,
:meth:`Engine.cancel`, :meth:`Engine.release` and :meth:`Engine.discard`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import select, update

from engine import control, observe, planning
from engine.bulk import insert_ignoring_conflicts
from engine.clock import Clock, SystemClock
from engine.context import Services
from engine.contracts import EngineSettings, IngestResult, JobHandler, Listener
from engine.db import Database, Tx
from engine.dispatcher import CompiledRecipe, Decision, Dispatcher, RecipeIndex
from engine.errors import SousError
from engine.events import Event, NewEvent
from engine.health import Health
from engine.ids import new_id
from engine.leader import Leadership
from engine.models import EventRow, MatchRow, RunRow
from engine.modes import Admission, FloodGate
from engine.queue.base import JobQueue, NewJob
from engine.queue.sql import SqlJobQueue
from engine.recipe import Recipe
from engine.recovery import rebuild
from engine.registry import Registry
from engine.rendering import Renderer
from engine.replay import Replayed, ReplayReport, RunFilter, event_row, replay_many, replay_run
from engine.runner import Runner, RunState
from engine.store.recipes import SqlRecipeStore, StoredRecipe
from engine.waits import Refetchers
from engine.workers import WorkerPool

log = logging.getLogger("sous.engine")

EVENTS = EventRow.__table__  # type: ignore[attr-defined]
MATCHES = MatchRow.__table__  # type: ignore[attr-defined]
RUNS = RunRow.__table__  # type: ignore[attr-defined]

RunChanges = control.RunChanges
__all__ = [
    "Engine",
    "EngineSettings",
    "IngestResult",
    "ReplayReport",
    "Replayed",
    "RunChanges",
    "RunFilter",
]


class Engine(WorkerPool):
    def __init__(
        self,
        db: Database,
        registry: Registry,
        *,
        clock: Clock | None = None,
        services: Services | None = None,
        queue: JobQueue | None = None,
        settings: EngineSettings | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.clock = clock or SystemClock()
        self.services = services or Services()
        if self.services.find(Refetchers) is None:  # connectors add their refresh hooks to it
            self.services.add(Refetchers())
        self.settings = settings or EngineSettings()
        self.queue: JobQueue = queue or SqlJobQueue(db, self.clock)
        self.index = RecipeIndex()
        self.dispatcher = Dispatcher(self.index)
        self.recipes = SqlRecipeStore(db, registry, self.clock)
        self.runner = Runner(db, self.queue, registry, self.clock, self.services, self)
        embedded = isinstance(self.queue, SqlJobQueue)
        self.admission = Admission(
            enabled=self.settings.admission if self.settings.admission is not None else embedded
        )
        self.floods = FloodGate()
        self.health = Health(self)
        self.leadership = Leadership(db)
        """Whether this process does the periodic work (see :mod:`engine.leader`)."""
        self._renderer = Renderer(self.clock.now)
        self._workers: list[asyncio.Task[None]] = []
        self._handlers: dict[str, tuple[JobHandler, asyncio.Semaphore]] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._listeners: list[Listener] = []
        self._idle = asyncio.Event()
        self._room = asyncio.Event()
        self._busy = 0
        self.backlog = (
            (self.settings.backlog or max(1, self.settings.workers // 4)) if embedded else None
        )
        self.counters: dict[str, int] = {
            "events": 0,
            "duplicates": 0,
            "runs_started": 0,
            "backpressure_waits": 0,
        }
        self.run_status_counts: dict[str, int] = {}

    # -- recipes --------------------------------------------------------------------------
    def reload(self) -> int:
        """Rebuild the index from the recipes in the database; return how many are enabled."""
        fresh = RecipeIndex()
        for stored in self.recipes.list():
            self._place(fresh, stored)
        self.index = fresh
        self.dispatcher.index = fresh
        return len(fresh)

    def compile(self, stored: StoredRecipe) -> CompiledRecipe:
        return CompiledRecipe.build(
            stored.uid, stored.workspace, stored.version, stored.recipe, self.registry
        )

    def refresh(self, stored: StoredRecipe | None, uid: str | None = None) -> None:
        """Bring one recipe's index entry up to date after a change."""
        if stored is None:
            self.index.remove(uid or "")
        else:
            self._place(self.index, stored)

    def _place(self, index: RecipeIndex, stored: StoredRecipe) -> None:
        if stored.enabled:
            index.add(self.compile(stored))
            return
        try:  # disabled: indexed only to record why it did not run
            index.add_disabled(self.compile(stored))
        except (SousError, ValueError):  # no longer compiles (a connector gone): nothing to record
            index.remove(stored.uid)

    def compiled(self, uid: str) -> CompiledRecipe | None:
        """The enabled recipe ``uid`` as it matches events now, or ``None``."""
        return self.index.by_uid.get(uid)

    def recipe_of(self, uid: str) -> Recipe | None:
        """The current recipe of ``uid`` (enabled or not), for its mode and limits."""
        compiled = self.index.by_uid.get(uid)
        if compiled is not None:
            return compiled.recipe
        stored = self.recipes.by_uid(uid)
        return stored.recipe if stored is not None else None

    # -- ingestion ------------------------------------------------------------------------
    def _event(self, new: NewEvent) -> Event:
        now = self.clock.now()
        event_id = new_id("evt")
        return Event(
            id=event_id,
            type=new.type,
            payload=new.payload,
            workspace=new.workspace,
            store=new.store,
            source=new.source,
            dedup_key=new.dedup_key or event_id,
            occurred_at=new.occurred_at or now,
            received_at=now,
            caused_by=new.caused_by,
            target_recipe=new.target_recipe,
        )

    async def ingest(self, new: NewEvent, follow_up: Sequence[str] = ()) -> IngestResult:
        """Store the event (deduplicated on its key) with its decisions, runs and jobs.

        ``follow_up`` names job kinds to enqueue for the event in the same transaction (for
        example the BigCommerce connector's normalisation of a raw webhook).
        """
        event = self._event(new)
        with observe.work("ingest", event_id=event.id):
            decisions = self.dispatcher.decide(event)
            plan = planning.plan(self, event, decisions)
            try:
                result = await self.db.writer.write(
                    lambda tx: self._store(tx, event, decisions, plan, follow_up)
                )
            except BaseException:
                planning.undo(self, plan)
                raise
            await self._stored(event, plan, result)
        return result

    async def receive(self, new: NewEvent, follow_up: Sequence[str] = ()) -> IngestResult:
        """Ingest an event that a sender outside waits on (the HTTP API, inbound hooks), with
        backpressure: once it is stored, if more jobs wait for a worker than ``backlog``, the
        answer waits (up to ``backlog_wait`` seconds) for the workers to catch up. A sender that
        waits for its answer then sends no faster than runs finish, and the time from ingest to
        run end stays bounded instead of growing with a queue."""
        result = await self.ingest(new, follow_up)
        if self.backlog is not None and self.queue.due() > self.backlog:
            self.counters["backpressure_waits"] += 1
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), self.settings.backlog_wait)
        return result

    async def ingest_many(
        self,
        news: Sequence[NewEvent],
        *,
        follow_up: Callable[[str], Sequence[str]] = lambda _type: (),
        also: Callable[[Tx], None] | None = None,
    ) -> list[IngestResult]:
        """Store several events in one transaction together with ``also(tx)``: all or nothing.

        For events derived by a job: pass the job's completion (and the state the events were
        derived from) as ``also``, and a crash can never leave the events stored without it, or
        the job done without its events, so a job run again derives nothing twice.
        ``follow_up(event_type)`` names job kinds to enqueue with each event, as in ``ingest``.
        """
        prepared = []
        for new in news:
            event = self._event(new)
            decisions = self.dispatcher.decide(event)
            prepared.append((event, decisions, planning.plan(self, event, decisions)))

        def write(tx: Tx) -> list[IngestResult]:
            results = [self._store(tx, e, d, p, follow_up(e.type)) for e, d, p in prepared]
            if also is not None:
                also(tx)
            return results

        try:
            results = await self.db.writer.write(write)
        except BaseException:
            for _, _, plan in prepared:
                planning.undo(self, plan)
            raise
        for (event, _, plan), result in zip(prepared, results, strict=True):
            await self._stored(event, plan, result)
        return results

    def _store(
        self,
        tx: Tx,
        event: Event,
        decisions: list[Decision],
        plan: planning.Plan,
        follow_up: Sequence[str],
    ) -> IngestResult:
        if not insert_ignoring_conflicts(tx.conn, EVENTS, event_row(event)):
            existing = tx.conn.execute(
                select(EVENTS.c.id).where(
                    EVENTS.c.workspace_id == event.workspace,
                    EVENTS.c.dedup_key == event.dedup_key,
                )
            ).scalar_one()
            return IngestResult(existing, duplicate=True)
        if plan.matches:
            tx.insert(MATCHES, plan.matches)
        if plan.runs:
            tx.insert(RUNS, plan.runs)
        if plan.jobs:
            self.queue.enqueue(tx, plan.jobs)
        if follow_up:
            self.queue.enqueue(tx, [NewJob(kind, event.id, hint=event) for kind in follow_up])
        return IngestResult(event.id, False, [r["id"] for r in plan.runs], decisions)

    async def _stored(self, event: Event, plan: planning.Plan, result: IngestResult) -> None:
        """After the commit: give back a duplicate's slots, or tell listeners and do what the
        plan left for later (superseding older runs, flood notices)."""
        if result.duplicate:
            planning.undo(self, plan)
            self.counters["duplicates"] += 1
            return
        self.counters["events"] += 1
        self.counters["runs_started"] += len(plan.jobs)
        self._emit(
            "event",
            {
                "id": event.id,
                "type": event.type,
                "store": event.store,
                "workspace": event.workspace,
                "runs": result.runs,
            },
        )
        for run_id, older in plan.supersede:
            await control.cancel(self, older, None, f"restart: superseded by run {run_id}")
        for notice in plan.notices:
            await self.ingest(notice)

    async def enqueue(self, jobs: Sequence[NewJob]) -> None:
        await self.db.writer.write(lambda tx: self.queue.enqueue(tx, jobs))

    def spawn(self, work: Awaitable[None]) -> None:
        """Run ``work`` beside the workers (its failure is logged)."""

        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("background engine work failed")

        task = asyncio.create_task(guarded())
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    def concurrency_key(self, recipe: Recipe, event: Event) -> str | None:
        template = recipe.concurrency_key
        if not template:
            return None
        try:
            return str(self._renderer.render(template, event.context(), "concurrency_key"))[:200]
        except Exception:  # a key that cannot render serialises the recipe instead
            log.warning(
                "concurrency_key of %s did not render; its runs will not overlap", recipe.id
            )
            return "*"

    # -- runs from outside (the API) ------------------------------------------------------
    async def replay(
        self,
        run_id: str,
        from_step: str = "start",
        version: str = "original",
        *,
        workspace: str | None = None,
    ) -> Replayed:
        """Run a run's event through its recipe again, as a new run (see :mod:`engine.replay`)."""
        return await replay_run(self, run_id, from_step, version, workspace)

    async def replay_many(
        self, which: RunFilter, from_step: str = "start", version: str = "original"
    ) -> ReplayReport:
        """Replay every run matching ``which`` (by default: failed runs)."""
        return await replay_many(self, which, from_step, version)

    async def cancel(
        self,
        run_ids: Sequence[str],
        *,
        workspace: str | None = None,
        reason: str = "cancelled through the API",
    ) -> RunChanges:
        """Cancel unfinished runs: at once, or at the next step boundary of one executing now."""
        return await control.cancel(self, run_ids, workspace, reason)

    async def release(self, run_ids: Sequence[str], *, workspace: str | None = None) -> RunChanges:
        """Let held runs go ahead (they still wait for a slot of their recipe's mode)."""
        return await control.release(self, run_ids, workspace)

    async def discard(self, run_ids: Sequence[str], *, workspace: str | None = None) -> RunChanges:
        """Drop held runs (status ``discarded``)."""
        return await control.discard(self, run_ids, workspace)

    # -- workers --------------------------------------------------------------------------
    async def start(self, workers: int | None = None) -> None:
        """Take back the jobs of a previous process, rebuild the index and the run slots, and
        start the workers: runs left unfinished resume from their last completed step.
        ``workers=0`` ingests only (other processes run the jobs)."""
        count = self.settings.workers if workers is None else workers
        if count == 0:
            self.backlog = None  # nothing here takes jobs: never hold an answer for them
        await self.queue.recover()
        self.reload()
        await rebuild(self)
        for n in range(count):
            self._workers.append(asyncio.create_task(self._work(), name=f"sous-worker-{n}"))

    # -- notifications --------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def notify_run(self, state: RunState, status: str) -> None:
        counts = self.run_status_counts
        counts[status] = counts.get(status, 0) + 1
        data = {
            "id": state.run_id,
            "recipe_uid": state.recipe_uid,
            "workspace": state.workspace,
            "status": status,
            "next_step": state.next_step,
        }
        for listener in list(self._listeners):
            try:
                listener("run", data)
            except Exception:
                log.exception("listener failed")

    def announce(
        self,
        run_id: str,
        recipe_uid: str,
        workspace: str,
        status: str,
        next_step: int | None = None,
    ) -> None:
        """Tell listeners (metrics, the event stream, the sandbox) that a run changed."""
        self.run_status_counts[status] = self.run_status_counts.get(status, 0) + 1
        self._emit(
            "run",
            {
                "id": run_id,
                "recipe_uid": recipe_uid,
                "workspace": workspace,
                "status": status,
                "next_step": next_step,
            },
        )

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, data)
            except Exception:
                log.exception("listener failed")

    async def set_run_status(self, run_id: str, status: str, reason: str | None = None) -> None:
        def write(tx: Tx) -> None:
            tx.conn.execute(
                update(RUNS).where(RUNS.c.id == run_id).values(status=status, status_reason=reason)
            )

        await self.db.writer.write(write)
