"""The engine: ingest → dispatch → queue → run, wired together.

:meth:`Engine.ingest` writes the event to the inbox and, in the same transaction, the dispatch
decisions, the runs they start and those runs' jobs; it returns only after the commit, so a
caller can acknowledge the event once ``ingest`` returns. Workers take run jobs from the queue
and hand them to the :class:`~engine.runner.Runner`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update

from engine.bulk import insert_ignoring_conflicts
from engine.clock import Clock, SystemClock
from engine.context import Services
from engine.db import Database, Tx
from engine.dispatcher import CompiledRecipe, Decision, Dispatcher, RecipeIndex
from engine.events import Event, NewEvent
from engine.ids import new_id
from engine.models import EventRow, MatchRow, RunRow
from engine.queue.base import Job, JobQueue, NewJob, QueueClosed
from engine.queue.sql import SqlJobQueue
from engine.recipe import Mode
from engine.registry import Registry
from engine.rendering import Renderer
from engine.runner import Runner, RunState
from engine.store.recipes import SqlRecipeStore, StoredRecipe

log = logging.getLogger("sous.engine")

EVENTS = EventRow.__table__  # type: ignore[attr-defined]
MATCHES = MatchRow.__table__  # type: ignore[attr-defined]
RUNS = RunRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class EngineSettings:
    max_depth: int = 5
    """The longest chain of events caused by Sous's own writes before a run stops as a loop."""
    workers: int = 16


@dataclass
class IngestResult:
    event_id: str
    duplicate: bool
    runs: list[str] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


Listener = Callable[[str, dict[str, Any]], None]
JobHandler = Callable[[Job], Awaitable[None]]


class Engine:
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
        self.settings = settings or EngineSettings()
        self.queue: JobQueue = queue or SqlJobQueue(db, self.clock)
        self.index = RecipeIndex()
        self.dispatcher = Dispatcher(self.index)
        self.recipes = SqlRecipeStore(db, registry, self.clock)
        self.runner = Runner(db, self.queue, registry, self.clock, self.services, self)
        self._renderer = Renderer(self.clock.now)
        self._workers: list[asyncio.Task[None]] = []
        self._handlers: dict[str, tuple[JobHandler, asyncio.Semaphore]] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._listeners: list[Listener] = []
        self._idle = asyncio.Event()
        self._busy = 0
        self.counters: dict[str, int] = {"events": 0, "duplicates": 0, "runs_started": 0}
        self.run_status_counts: dict[str, int] = {}

    # -- recipes --------------------------------------------------------------------------
    def reload(self) -> int:
        """Rebuild the index from every enabled recipe in the database; return how many."""
        fresh = RecipeIndex()
        for stored in self.recipes.list(enabled=True):
            fresh.add(self.compile(stored))
        self.index = fresh
        self.dispatcher.index = fresh
        return len(fresh)

    def compile(self, stored: StoredRecipe) -> CompiledRecipe:
        return CompiledRecipe.build(stored.uid, stored.workspace, stored.version, stored.recipe, self.registry)

    def refresh(self, stored: StoredRecipe | None, uid: str | None = None) -> None:
        """Bring one recipe's index entry up to date after a change."""
        if stored is None or not stored.enabled:
            self.index.remove(uid or (stored.uid if stored else ""))
        else:
            self.index.add(self.compile(stored))

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
        decisions = self.dispatcher.decide(event)
        plan = self._plan(event, decisions)

        def write(tx: Tx) -> IngestResult:
            if not insert_ignoring_conflicts(tx.conn, EVENTS, _event_row(event)):
                existing = tx.conn.execute(
                    select(EVENTS.c.id).where(
                        EVENTS.c.workspace_id == event.workspace, EVENTS.c.dedup_key == event.dedup_key
                    )
                ).scalar_one()
                return IngestResult(existing, duplicate=True)
            self._write_plan(tx, plan)
            if follow_up:
                self.queue.enqueue(tx, [NewJob(kind, event.id, hint=event) for kind in follow_up])
            return IngestResult(event.id, False, [r["id"] for r in plan.runs], decisions)

        result = await self.db.writer.write(write)
        if result.duplicate:
            self.counters["duplicates"] += 1
        else:
            self.counters["events"] += 1
            self.counters["runs_started"] += len(plan.jobs)
            self._emit("event", {"id": event.id, "type": event.type, "store": event.store, "workspace": event.workspace, "runs": result.runs})
        return result

    def _plan(self, event: Event, decisions: list[Decision]) -> _Plan:
        plan = _Plan()
        now = self.clock.now()
        for decision in decisions:
            compiled = decision.recipe
            run_id: str | None = None
            if decision.matched:
                run_id = new_id("run")
                status, reason, key = "queued", None, None
                if event.depth > self.settings.max_depth:
                    chain = " → ".join((*(event.caused_by.chain if event.caused_by else ()), compiled.recipe.id))
                    status, reason = "loop_stopped", f"chain deeper than {self.settings.max_depth}: {chain}"
                else:
                    key = self._concurrency_key(compiled, event)
                plan.runs.append(
                    {
                        "id": run_id,
                        "workspace_id": event.workspace,
                        "recipe_uid": compiled.uid,
                        "recipe_version": compiled.version,
                        "event_id": event.id,
                        "store": event.store,
                        "status": status,
                        "status_reason": reason,
                        "concurrency_key": key,
                        "next_step": 0,
                        "depth": event.depth,
                        "created_at": now,
                        "finished_at": now if status != "queued" else None,
                    }
                )
                if status == "queued":
                    state = RunState(run_id, compiled.uid, event.workspace, compiled.recipe, event)
                    plan.jobs.append(NewJob("run", run_id, lock_key=_lock(compiled, key), hint=state))
            plan.matches.append(
                {
                    "event_id": event.id,
                    "recipe_uid": compiled.uid,
                    "workspace_id": event.workspace,
                    "recipe_version": compiled.version,
                    "matched": decision.matched,
                    "stage": decision.stage,
                    "reason": decision.reason,
                    "run_id": run_id,
                }
            )
        return plan

    def _write_plan(self, tx: Tx, plan: _Plan) -> None:
        if plan.matches:
            tx.insert(MATCHES, plan.matches)
        if plan.runs:
            tx.insert(RUNS, plan.runs)
        if plan.jobs:
            self.queue.enqueue(tx, plan.jobs)

    def _concurrency_key(self, compiled: CompiledRecipe, event: Event) -> str | None:
        template = compiled.recipe.concurrency_key
        if not template:
            return None
        try:
            return str(self._renderer.render(template, event.context(), "concurrency_key"))[:200]
        except Exception:  # a key that cannot render serialises the recipe instead
            log.warning("concurrency_key of %s did not render; runs of it will not overlap", compiled.uid)
            return "*"

    # -- workers --------------------------------------------------------------------------
    def handle(self, kind: str, handler: JobHandler, concurrency: int = 64) -> None:
        """Run jobs of ``kind`` with ``handler``, up to ``concurrency`` at once, beside the run
        workers (a handler must complete or retry its job through the queue)."""
        self._handlers[kind] = (handler, asyncio.Semaphore(concurrency))

    async def start(self, workers: int | None = None) -> None:
        await self.queue.recover()
        self.reload()
        for n in range(workers or self.settings.workers):
            self._workers.append(asyncio.create_task(self._work(), name=f"sous-worker-{n}"))

    async def stop(self) -> None:
        await self.queue.close()
        for task in [*self._workers, *self._side_tasks]:
            task.cancel()
        for task in [*self._workers, *self._side_tasks]:
            with contextlib.suppress(asyncio.CancelledError, QueueClosed):
                await task
        self._workers.clear()

    async def _work(self) -> None:
        while True:
            try:
                job = await self.queue.get()
            except QueueClosed:
                return
            self._busy += 1
            self._idle.clear()
            if job.kind in self._handlers:
                handler, limit = self._handlers[job.kind]
                await limit.acquire()
                task = asyncio.create_task(self._side(job, handler, limit))
                self._side_tasks.add(task)
                task.add_done_callback(self._side_tasks.discard)
                continue
            try:
                if job.kind == "run":
                    await self.runner.execute(job)
                else:
                    log.error("unknown job kind %r; dropping job %s", job.kind, job.id)
                    await self.db.writer.write(lambda tx, j=job: self.queue.complete(tx, j))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s failed unexpectedly; it stays queued for recovery", job.id)
            finally:
                self._done_one()

    async def _side(self, job: Job, handler: JobHandler, limit: asyncio.Semaphore) -> None:
        try:
            await handler(job)
        except Exception:
            log.exception("job %s (%s) failed unexpectedly; it stays queued for recovery", job.id, job.kind)
        finally:
            limit.release()
            self._done_one()

    def _done_one(self) -> None:
        self._busy -= 1
        if self._busy == 0 and self.queue.due() == 0:
            self._idle.set()

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until no job is due or running (tests and the demo); delayed jobs may remain."""

        async def wait() -> None:
            while self.queue.due() or self._busy:
                self._idle.clear()
                await self._idle.wait()

        await asyncio.wait_for(wait(), timeout)

    # -- notifications --------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def notify_run(self, state: RunState, status: str) -> None:
        self.run_status_counts[status] = self.run_status_counts.get(status, 0) + 1
        self._emit("run", {"id": state.run_id, "recipe_uid": state.recipe_uid, "workspace": state.workspace, "status": status, "next_step": state.next_step})

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, data)
            except Exception:
                log.exception("listener failed")

    async def set_run_status(self, run_id: str, status: str, reason: str | None = None) -> None:
        def write(tx: Tx) -> None:
            tx.conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(status=status, status_reason=reason))

        await self.db.writer.write(write)


@dataclass
class _Plan:
    matches: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[NewJob] = field(default_factory=list)


def _lock(compiled: CompiledRecipe, key: str | None) -> str | None:
    mode = compiled.recipe.mode
    if key is not None:
        return f"{compiled.uid}:{key}"
    if mode in (Mode.QUEUED, Mode.SINGLE, Mode.RESTART):
        return compiled.uid
    return None


def _event_row(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "workspace_id": event.workspace,
        "store": event.store,
        "type": event.type,
        "payload": event.payload,
        "source": event.source,
        "dedup_key": event.dedup_key,
        "occurred_at": event.occurred_at,
        "received_at": event.received_at,
        "caused_by": event.caused_by.to_dict() if event.caused_by else None,
        "target_recipe": event.target_recipe,
        "dispatched": True,
    }
