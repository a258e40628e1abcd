"""Execute a run: its steps in order, each with its own timeout, retry policy and trace.

For each step: evaluate its ``if``, render its ``with:`` in the sandbox, validate the result
against the action's parameter model, call the action under its timeout, and write the step's
trace row in the same transaction as the run's new state. A retryable failure puts the run's
job back with a due time (a waiting run is a row, not a sleeping coroutine); anything else ends
the step ``failed`` — and the run too, unless the step says ``continue_on_error``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, insert, select, update

from engine import conditions
from engine.clock import Clock
from engine.context import ActionContext, Services
from engine.db import Database, Tx
from engine.errors import (
    ConditionError,
    NotFoundError,
    PermanentError,
    RenderError,
    Retry,
    RetryableError,
)
from engine.events import CausedBy, Event, NewEvent
from engine.models import EventRow, RecipeVersionRow, RunRow, StepRow
from engine.queue.base import Job, JobQueue
from engine.recipe import Recipe, Step
from engine.redact import redact
from engine.registry import Registry
from engine.rendering import Renderer
from engine.retry import RetryOn, RetryPolicy
from engine.vault import Vault

if TYPE_CHECKING:
    from engine.engine import Engine

log = logging.getLogger("sous.runner")

RUNS = RunRow.__table__  # type: ignore[attr-defined]
STEPS = StepRow.__table__  # type: ignore[attr-defined]

FINAL = frozenset(
    {"succeeded", "failed", "succeeded_with_errors", "skipped", "cancelled", "loop_stopped", "discarded"}
)


@dataclass
class RunState:
    """What a worker needs to continue a run; rebuilt from the database after a restart."""

    run_id: str
    recipe_uid: str
    workspace: str
    recipe: Recipe
    event: Event
    next_step: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    failures: int = 0
    attempts: int = 0
    resumed: bool = False
    """Loaded from the database: a step row may exist from before a crash."""


class SecretsView:
    """``secrets.NAME`` in a template: read from the vault, remembered so the trace masks it."""

    def __init__(self, vault: Vault, workspace: str, used: dict[str, str]) -> None:
        self._vault = vault
        self._workspace = workspace
        self._used = used

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> str:
        try:
            value = self._vault.get(self._workspace, name)
        except NotFoundError:
            raise RenderError("secrets", f"no secret named {name!r} in this workspace; add it first") from None
        self._used[name] = value
        return value


class StepFailed(Exception):
    def __init__(self, message: str, retryable: bool = False, defer: float | None = None, kind: RetryOn | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.defer = defer
        self.kind = kind


class Runner:
    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        registry: Registry,
        clock: Clock,
        services: Services,
        engine: Engine,
    ) -> None:
        self._db = db
        self._queue = queue
        self._registry = registry
        self._clock = clock
        self._services = services
        self._engine = engine
        self._renderer = Renderer(clock.now)

    # -- loading --------------------------------------------------------------------------
    def load(self, run_id: str) -> RunState | None:
        """Rebuild a run's state from the database (after a restart, or without a cache)."""

        def read(tx: Tx) -> RunState | None:
            run = tx.conn.execute(select(RUNS).where(RUNS.c.id == run_id)).first()
            if run is None or run.status in FINAL:
                return None
            ev = tx.conn.execute(
                select(EventRow.__table__).where(EventRow.__table__.c.id == run.event_id)  # type: ignore[attr-defined]
            ).one()
            versions = RecipeVersionRow.__table__  # type: ignore[attr-defined]
            doc = tx.conn.execute(
                select(versions.c.document).where(
                    versions.c.recipe_uid == run.recipe_uid, versions.c.version == run.recipe_version
                )
            ).scalar_one()
            steps = tx.conn.execute(
                select(STEPS).where(STEPS.c.run_id == run_id).order_by(STEPS.c.index)
            ).all()
            recipe = Recipe.model_validate(doc)
            state = RunState(
                run_id=run.id,
                recipe_uid=run.recipe_uid,
                workspace=run.workspace_id,
                recipe=recipe,
                event=event_from_row(ev),
                next_step=run.next_step,
                resumed=True,
            )
            for step in steps:
                if step.status in ("succeeded", "skipped") and step.output is not None:
                    state.outputs[step.step_id] = step.output
                if step.status == "failed":
                    state.failures += 1
                if step.index == run.next_step:
                    state.attempts = step.attempts
            return state

        return self._db.run_sync(read)

    # -- execution ------------------------------------------------------------------------
    async def execute(self, job: Job) -> None:
        state: RunState | None = job.hint if isinstance(job.hint, RunState) else None
        job.hint = None
        if state is None:
            state = self.load(job.ref)
            if state is None:  # finished or gone: nothing to do but drop the job
                await self._db.writer.write(lambda tx: self._queue.complete(tx, job))
                return
        recipe = state.recipe
        while state.next_step < len(recipe.actions):
            index = state.next_step
            step = recipe.actions[index]
            started = self._clock.now()
            t0 = self._clock.monotonic()
            state.attempts += 1
            record: dict[str, Any] = {"attempts": state.attempts, "started_at": started}
            try:
                outcome, output, traced_in, traced_out = await self._step(state, step, index)
            except StepFailed as exc:
                record.update(status="failed", error=str(exc), input=None)
                if exc.retryable and self._may_retry(step, exc, state.attempts):
                    delay = exc.defer if exc.defer is not None else self._policy(step).delay(state.attempts)
                    due = self._clock.now() + timedelta(seconds=delay)
                    record.update(status="retrying", finished_at=self._clock.now())
                    await self._save(state, index, step, record, run_status="retrying", job=job, retry_at=due)
                    return
                record["finished_at"] = self._clock.now()
                record["duration_ms"] = (self._clock.monotonic() - t0) * 1000
                state.failures += 1
                state.attempts = 0
                if step.continue_on_error:
                    state.next_step += 1
                    done = state.next_step >= len(recipe.actions)
                    status = "succeeded_with_errors" if done else "running"
                    await self._save(state, index, step, record, run_status=status, job=job if done else None, reason=str(exc) if done else None)
                    continue
                await self._save(state, index, step, record, run_status="failed", job=job, reason=f"step {step.id}: {exc}")
                return
            record.update(
                status=outcome,
                input=traced_in,
                output=traced_out,
                finished_at=self._clock.now(),
                duration_ms=(self._clock.monotonic() - t0) * 1000,
            )
            if output is not None:
                state.outputs[step.id or str(index)] = output
            state.next_step += 1
            state.attempts = 0
            done = state.next_step >= len(recipe.actions)
            if done:
                final = "succeeded_with_errors" if state.failures else "succeeded"
                await self._save(state, index, step, record, run_status=final, job=job)
            else:
                await self._save(state, index, step, record, run_status="running")

    async def _step(self, state: RunState, step: Step, index: int) -> tuple[str, Any, Any, Any]:
        """Run one step; returns its outcome, its output, and the input and output to trace."""
        data = state.event.context()
        data["steps"] = state.outputs
        if step.if_ is not None:
            try:
                passed = conditions.truthy(conditions.apply(step.if_, data))
            except ConditionError as exc:
                raise StepFailed(f"if: {exc}") from None
            if not passed:
                return "skipped", None, None, None
        action = self._registry.action(step.use)
        used: dict[str, str] = {}
        vault = self._services.find(Vault)
        if vault is not None:
            data["secrets"] = SecretsView(vault, state.workspace, used)
        try:
            rendered = self._renderer.render(step.with_, data, "with")
        except RenderError as exc:
            raise StepFailed(str(exc)) from None
        try:
            params = action.params.model_validate(rendered)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise StepFailed(f"with.{where}: {first['msg']} (after rendering)") from None
        ctx = ActionContext(
            run_id=state.run_id,
            step_id=step.id or str(index),
            recipe_uid=state.recipe_uid,
            workspace=state.workspace,
            store=state.event.store,
            event=state.event,
            clock=self._clock,
            services=self._services,
            emit=lambda new: self._emit(state, new),
            attempt=state.attempts,
            secrets=used,
        )
        timeout = step.timeout or action.timeout
        try:
            result = await asyncio.wait_for(action.handler(ctx, params), timeout)
        except TimeoutError:
            raise StepFailed(f"timed out after {timeout:g}s", retryable=True, kind=RetryOn.TIMEOUT) from None
        except Retry as exc:
            raise StepFailed(str(exc), retryable=True, defer=exc.defer, kind=RetryOn.RETRYABLE) from None
        except RetryableError as exc:
            raise StepFailed(str(exc), retryable=True, kind=_kind(exc)) from None
        except PermanentError as exc:
            raise StepFailed(str(exc)) from None
        except Exception as exc:
            log.exception("action %s raised unexpectedly", step.use)
            raise StepFailed(f"{type(exc).__name__}: {exc}") from None
        output = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
        masked = used.values()
        return "succeeded", output, redact(rendered, action.secret_fields, masked), redact(output, (), masked)

    def _policy(self, step: Step) -> RetryPolicy:
        return step.retry or self._registry.action(step.use).retry

    def _may_retry(self, step: Step, exc: StepFailed, attempts: int) -> bool:
        policy = self._policy(step)
        if attempts >= policy.tries:
            return False
        return RetryOn.RETRYABLE in policy.on or (exc.kind is not None and exc.kind in policy.on)

    async def _emit(self, state: RunState, new: NewEvent) -> None:
        parent = state.event.caused_by
        chain = (*parent.chain, state.recipe.id) if parent else (state.recipe.id,)
        caused = CausedBy(state.run_id, state.recipe_uid, state.event.depth + 1, chain)
        await self._engine.ingest(
            NewEvent(
                type=new.type,
                payload=new.payload,
                workspace=state.workspace,
                store=new.store if new.store is not None else state.event.store,
                source=new.source if new.source != "api" else "internal",
                dedup_key=new.dedup_key,
                occurred_at=new.occurred_at,
                caused_by=caused,
            )
        )

    async def _save(
        self,
        state: RunState,
        index: int,
        step: Step,
        record: dict[str, Any],
        *,
        run_status: str,
        job: Job | None = None,
        retry_at: datetime | None = None,
        reason: str | None = None,
    ) -> None:
        now = self._clock.now()
        row = {
            "run_id": state.run_id,
            "index": index,
            "step_id": step.id or str(index),
            "use": step.use,
            "status": record["status"],
            "attempts": record["attempts"],
            "input": record.get("input"),
            "output": record.get("output"),
            "error": (record.get("error") or None) and str(record["error"])[:4000],
            "started_at": record.get("started_at"),
            "finished_at": record.get("finished_at"),
            "duration_ms": record.get("duration_ms"),
        }
        final = run_status in FINAL
        resumed = state.resumed
        values: dict[str, Any] = {"status": run_status, "next_step": state.next_step}
        if index == 0 and record["attempts"] == 1:
            values["started_at"] = record.get("started_at")
        if final:
            values["finished_at"] = now
            values["status_reason"] = reason
        if retry_at is not None:
            values["due_at"] = retry_at

        def write(tx: Tx) -> None:
            tx.insert(STEPS, [row], upsert=row["attempts"] > 1 or resumed)
            tx.update(RUNS, {"id": state.run_id}, values)
            if job is not None:
                if retry_at is not None:
                    self._queue.retry(tx, job, retry_at)
                else:
                    self._queue.complete(tx, job)

        await self._db.writer.write(write)
        self._engine.notify_run(state, run_status)


def _kind(exc: RetryableError) -> RetryOn:
    status = getattr(exc, "status", None)
    if status == 429:
        return RetryOn.RATE_LIMIT
    if isinstance(status, int) and status >= 500:
        return RetryOn.SERVER_ERROR
    return RetryOn.RETRYABLE


def event_from_row(row: Any) -> Event:
    from datetime import UTC

    def aware(value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    return Event(
        id=row.id,
        type=row.type,
        payload=row.payload or {},
        workspace=row.workspace_id,
        store=row.store,
        source=row.source,
        dedup_key=row.dedup_key,
        occurred_at=aware(row.occurred_at),
        received_at=aware(row.received_at),
        caused_by=CausedBy.from_dict(row.caused_by),
        target_recipe=row.target_recipe,
    )
