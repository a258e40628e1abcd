"""The engine: ingest → dispatch → admission → queue → run, wired together.

:meth:`Engine.ingest` writes the event to the inbox and, in the same transaction, the dispatch
decisions, the runs they start and those runs' jobs; it returns only after the commit, so a
caller can acknowledge the event once ``ingest`` returns. Each new run goes through flood
protection and its recipe's mode (:mod:`engine.plan.modes`): it starts (its job is written with it),
waits its turn, or is recorded ``skipped`` or ``held``. Workers take run jobs from the queue
and hand them to the :class:`~engine.run.runner.Runner`.

Operations on runs from outside (the API): :meth:`Engine.replay`, :meth:`Engine.replay_many`,
:meth:`Engine.cancel`, :meth:`Engine.release` and :meth:`Engine.discard`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from engine import observe
from engine.authoring.rendering import Renderer
from engine.clock import Clock, SystemClock
from engine.context import Services
from engine.contracts import EngineSettings, IngestResult, JobHandler, Listener
from engine.errors import SousError
from engine.ingest.inbox import received, store
from engine.match.dispatcher import CompiledRecipe, Dispatcher, RecipeIndex
from engine.model.events import Event, NewEvent
from engine.model.recipe import Recipe
from engine.model.run import RunState
from engine.ops import control
from engine.ops.autodisable import AutoDisabler
from engine.ops.recovery import rebuild
from engine.ops.replay import Replayed, ReplayReport, RunFilter, replay_many, replay_run
from engine.ops.testrun import TestRun, start_test_run
from engine.plan import planning
from engine.plan.modes import Admission, FloodGate
from engine.queue.base import Job, JobQueue, NewJob
from engine.queue.sql import SqlJobQueue
from engine.registry import Registry
from engine.run import approval
from engine.run.calls import RecipeCalls
from engine.run.runner import Runner
from engine.run.waits import Refetchers
from engine.run.workers import WorkerPool
from engine.store.db import Database, Tx, transient, write_until_done
from engine.store.models import EventRow, MatchRow, RunRow
from engine.store.recipes import SqlRecipeStore, StoredRecipe
from engine.timing.leader import Leadership

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
        if self.services.find(Refetchers) is None:  # connectors add their refresh hooks to it
            self.services.add(Refetchers())
        self.services.add(RecipeCalls(self))  # core.call_recipe starts runs through it
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
        self.autodisable = AutoDisabler(self)
        self.leadership = Leadership(db)
        """Whether this process does the periodic work (see :mod:`engine.timing.leader`)."""
        self._renderer = Renderer(self.clock.now)
        self._listeners: list[Listener] = []
        backlog = (
            (self.settings.backlog or max(1, self.settings.workers // 4)) if embedded else None
        )
        self.workers = WorkerPool(db, self.clock, self.queue, self._run_job, backlog)
        self.counters: dict[str, int] = {
            "events": 0,
            "duplicates": 0,
            "runs_started": 0,
            "backpressure_waits": 0,
        }
        self.run_status_counts: dict[str, int] = {}
        self.alerting = False
        """Whether failed runs and auto-disabled recipes are e-mailed: set by whoever handles
        the alert jobs (:mod:`engine.run.alerts`) in this deployment."""
        self.links = ""
        """Where people reach this Sous (the start of links in events and alerts)."""

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
    async def ingest(self, new: NewEvent, follow_up: Sequence[str] = ()) -> IngestResult:
        """Store the event (deduplicated on its key) with its decisions, runs and jobs.

        ``follow_up`` names job kinds to enqueue for the event in the same transaction (for
        example the BigCommerce connector's normalisation of a raw webhook).
        """
        event = received(new, self.clock.now())
        with observe.work("ingest", event_id=event.id):
            decisions = self.dispatcher.decide(event)
            plan = planning.plan(self, event, decisions)
            try:
                result = await self.db.writer.write(
                    lambda tx: store(tx, self.queue, event, decisions, plan, follow_up)
                )
            except BaseException:
                planning.undo(self, plan)
                raise
            await self._stored(event, plan, result)
            log.debug(
                "event %s (%s): %s, %d run(s)",
                result.event_id,
                event.type,
                "duplicate" if result.duplicate else "stored",
                len(result.runs),
            )
        return result

    async def receive(self, new: NewEvent, follow_up: Sequence[str] = ()) -> IngestResult:
        """Ingest an event that a sender outside waits on (the HTTP API, inbound hooks), with
        backpressure: once it is stored, if more jobs wait for a worker than ``backlog``, the
        answer waits (up to ``backlog_wait`` seconds) for the workers to catch up. A sender that
        waits for its answer then sends no faster than runs finish, and the time from ingest to
        run end stays bounded instead of growing with a queue."""
        result = await self.ingest(new, follow_up)
        if await self.workers.hold(self.settings.backlog_wait):
            self.counters["backpressure_waits"] += 1
        return result

    async def ingest_many(
        self,
        news: Sequence[NewEvent],
        *,
        follow_up: Callable[[str], Sequence[str]] = lambda _type: (),
        also: Callable[[Tx], None] | None = None,
        first: Callable[[Tx], None] | None = None,
    ) -> list[IngestResult]:
        """Store several events in one transaction together with ``also(tx)``: all or nothing.
        ``first(tx)`` runs before the events are stored (a check that may refuse them, or
        take locks before the events' own rows are written).

        For events derived by a job: pass the job's completion (and the state the events were
        derived from) as ``also``, and a crash can never leave the events stored without it, or
        the job done without its events, so a job run again derives nothing twice.
        ``follow_up(event_type)`` names job kinds to enqueue with each event, as in ``ingest``.
        """
        prepared = []
        for new in news:
            event = received(new, self.clock.now())
            decisions = self.dispatcher.decide(event)
            prepared.append((event, decisions, planning.plan(self, event, decisions)))

        def write(tx: Tx) -> list[IngestResult]:
            if first is not None:
                first(tx)
            results = [store(tx, self.queue, e, d, p, follow_up(e.type)) for e, d, p in prepared]
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

    async def record_failure(self, notice: NewEvent, also: Callable[[Tx], None]) -> None:
        """Store a failed run's ``notice`` with ``also`` (its final state) in one transaction,
        again after a transient fault; if the notice cannot be stored, ``also`` alone."""
        delay = 0.05
        while True:
            try:
                await self.ingest_many([notice], also=also)
                return
            except Exception as exc:
                if not transient(exc):
                    log.exception("the notice %s could not be stored; the run is", notice.type)
                    break
                log.warning("storing %s failed (%s); again in %.2fs", notice.type, exc, delay)
            await self.clock.sleep(delay)
            delay = min(5.0, delay * 2)
        await write_until_done(self.db.writer, also, self.clock.sleep, "saving a failed run")

    async def enqueue(self, jobs: Sequence[NewJob]) -> None:
        await self.db.writer.write(lambda tx: self.queue.enqueue(tx, jobs))

    async def _run_job(self, job: Job) -> None:
        await self.runner.execute(job)  # resolved per job, so a wrapped execute takes effect

    def spawn(self, work: Awaitable[None]) -> None:
        """Run ``work`` beside the workers (its failure is logged)."""
        self.workers.spawn(work)

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
        """Run a run's event through its recipe again, as a new run (:mod:`engine.ops.replay`)."""
        return await replay_run(self, run_id, from_step, version, workspace)

    async def replay_many(
        self, which: RunFilter, from_step: str = "start", version: str = "original"
    ) -> ReplayReport:
        """Replay every run matching ``which`` (by default: failed runs)."""
        return await replay_many(self, which, from_step, version)

    async def test_run(self, workspace: str, slug: str, event: Event) -> TestRun:
        """Run recipe ``slug`` on ``event`` in test mode: reads made, writes recorded as
        ``would_do`` (:mod:`engine.ops.testrun`); or why it would not fire."""
        stored = self.recipes.get(workspace, slug)
        return await start_test_run(self, self.compile(stored), event)

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

    async def decide_approval(
        self,
        approval_id: str,
        decision: str,
        *,
        by: str,
        comment: str | None = None,
        workspace: str | None = None,
    ) -> Any:
        """Approve or reject a pending approval and wake its run at once; its row as decided
        (:mod:`engine.run.approval`). Raises ``NotFoundError`` or ``ConflictError``."""
        now = self.clock.now()
        return await self.db.writer.write(
            lambda tx: approval.decide(
                tx, self.queue, workspace, approval_id, decision, by=by, comment=comment, now=now
            )
        )

    # -- workers --------------------------------------------------------------------------
    async def start(self, workers: int | None = None) -> None:
        """Take back the jobs of a previous process, rebuild the index and the run slots, and
        start the workers: runs left unfinished resume from their last completed step.
        ``workers=0`` ingests only (other processes run the jobs)."""
        count = self.settings.workers if workers is None else workers
        if count == 0:
            self.workers.backlog = None  # nothing here takes jobs: never hold an answer
        await self.queue.recover()
        self.reload()
        await rebuild(self)
        self.workers.start(count)

    def handle(self, kind: str, handler: JobHandler, concurrency: int = 64) -> None:
        """Run jobs of ``kind`` with ``handler``, up to ``concurrency`` at once, beside the run
        workers (a handler must complete or retry its job through the queue)."""
        self.workers.handle(kind, handler, concurrency)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until no job is due or running (tests and the demo); delayed jobs may remain."""
        await self.workers.drain(timeout)

    async def stop(self) -> None:
        self.leadership.close()
        await self.workers.stop()

    # -- notifications --------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def notify_run(self, state: RunState, status: str) -> None:
        self.announce(state.run_id, state.recipe_uid, state.workspace, status, state.next_step)

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
