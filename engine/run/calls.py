"""Recipe calls: a step that starts a run of another recipe of its workspace and, by default,
waits for it to end (``core.call_recipe``).

The call is an event of type :data:`CALLED` aimed at the called recipe alone (``target_recipe``),
its payload the step's rendered ``input`` plus ``caller`` (the calling run, recipe and step, and
the call depth). The called recipe must have ``sous.recipe.called`` as its trigger. The event's
dedup key is the calling step's idempotency key and attempt, so a step run again after a crash
finds the run it started instead of starting another; a retry (a new attempt) starts a new one.

A waiting call parks the calling run ``waiting`` (a :class:`~engine.run.waits.Wait` until the
call's deadline, with the called run named in the step's trace). When the called run ends, its
last write wakes the caller's job in the same transaction (:func:`caller_of`, ``JobQueue.hasten``):
no polling. The woken step runs again, finds the called run ended and returns its id, status and
``result`` (the outputs of its steps by step id); a called run that did not succeed fails the
step (its retry policy and ``continue_on_error`` apply). Past the deadline the called run is
cancelled and the step fails. Cancelling a caller cancels the run it waits for
(:func:`waited_for`).

Loops are refused before anything starts: a recipe already in the chain of runs that led to the
call, or a call nested deeper than :data:`MAX_CALL_DEPTH`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select

from engine.errors import PermanentError, RetryableError
from engine.model.events import CausedBy, Event, NewEvent
from engine.model.status import DONE, FINAL, RunStatus, StepStatus
from engine.run.foreach import ROW_SPAN
from engine.run.runstate import parse_time
from engine.run.waits import Wait
from engine.store.db import Tx
from engine.store.models import EventRow, RunRow, StepRow

if TYPE_CHECKING:
    from engine.clock import Clock
    from engine.context import ActionContext
    from engine.contracts import IngestResult
    from engine.model.recipe import Recipe
    from engine.queue.base import JobQueue
    from engine.store.db import Database
    from engine.store.recipes import SqlRecipeStore

CALLED = "sous.recipe.called"
"""The trigger type of a recipe other recipes call."""
MAX_CALL_DEPTH = 5
"""The most calls nested in one another (a calls b calls c …)."""

EVENTS = EventRow.__table__  # type: ignore[attr-defined]
RUNS = RunRow.__table__  # type: ignore[attr-defined]
STEPS = StepRow.__table__  # type: ignore[attr-defined]

SUCCEEDED = frozenset({RunStatus.SUCCEEDED, RunStatus.SUCCEEDED_WITH_ERRORS})


class CallHost(Protocol):
    """What a call needs of the engine."""

    @property
    def db(self) -> Database: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def queue(self) -> JobQueue: ...
    @property
    def recipes(self) -> SqlRecipeStore: ...

    def recipe_of(self, uid: str) -> Recipe | None: ...

    async def ingest(self, new: NewEvent, follow_up: Sequence[str] = ()) -> IngestResult: ...

    async def cancel(
        self, run_ids: Sequence[str], *, workspace: str | None = None, reason: str = ...
    ) -> Any: ...


@dataclass(frozen=True)
class Called:
    """A called run as the calling step sees it."""

    run_id: str
    recipe: str
    status: str
    created_at: datetime
    reason: str | None

    @property
    def ended(self) -> bool:
        return self.status in FINAL


class RecipeCalls:
    """The engine's side of ``core.call_recipe`` (a service the action finds in ``ctx``)."""

    def __init__(self, host: CallHost) -> None:
        self._host = host

    async def call(
        self, ctx: ActionContext, slug: str, data: dict[str, Any], wait: bool, timeout: timedelta
    ) -> dict[str, Any]:
        """Start (or find, when the step runs again) the called run; its output at once when
        not waiting or when it has ended, else raises :class:`Wait` until the deadline."""
        called = await self._start(ctx, slug, data)
        if not wait:
            return self.output(called, with_result=False)
        if called.ended:
            return self._ended(called)
        deadline = called.created_at + timeout
        if ctx.clock.now() >= deadline:
            reason = f"its caller {ctx.run_id} stopped waiting after {_span(timeout)}"
            await self._host.cancel([called.run_id], workspace=ctx.workspace, reason=reason)
            raise PermanentError(
                f"the called run {called.run_id} of {slug} did not end within {_span(timeout)} "
                "(it was cancelled)"
            )
        detail = {"call": {"run_id": called.run_id, "recipe": slug}}
        raise Wait(deadline, detail=detail, settle=lambda: self._settle(ctx.run_id, called.run_id))

    def output(self, called: Called, with_result: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": called.run_id,
            "recipe": called.recipe,
            "status": called.status,
        }
        if called.reason:
            out["reason"] = called.reason
        if with_result:
            out["result"] = self._host.db.read_sync(lambda tx: _results(tx, called.run_id))
        return out

    def _ended(self, called: Called) -> dict[str, Any]:
        if called.status in SUCCEEDED:
            return self.output(called)
        why = f": {called.reason}" if called.reason else ""
        raise RetryableError(
            f"the called run {called.run_id} of {called.recipe} ended {called.status}{why}"
        )

    async def _start(self, ctx: ActionContext, slug: str, data: dict[str, Any]) -> Called:
        stored = self._host.recipes.find(ctx.workspace, slug)
        if stored is None:
            raise PermanentError(f"no recipe {slug!r} in this workspace to call")
        if stored.recipe.trigger.type != CALLED:
            raise PermanentError(
                f"recipe {slug!r} cannot be called: its trigger is {stored.recipe.trigger.type}; "
                f"a called recipe's trigger is {CALLED}"
            )
        if not stored.enabled:
            raise PermanentError(f"recipe {slug!r} is switched off")
        caused = self._caused_by(ctx, slug)
        payload = {**data, "caller": _caller(ctx, caused)}
        new = NewEvent(
            type=CALLED,
            payload=payload,
            workspace=ctx.workspace,
            store=ctx.store,
            source="internal",
            dedup_key=f"{ctx.idempotency_key}:call:{ctx.attempt}",
            caused_by=caused,
            target_recipe=stored.uid,
        )
        result = await self._host.ingest(new)
        found = self._host.db.read_sync(lambda tx: _run_of(tx, result.event_id, stored.uid))
        if found is None:
            raise PermanentError(f"recipe {slug!r} did not start a run: {_why(result)}")
        return Called(
            run_id=found.id,
            recipe=slug,
            status=found.status,
            created_at=_aware(found.created_at),
            reason=found.status_reason,
        )

    def _caused_by(self, ctx: ActionContext, slug: str) -> CausedBy:
        """The called event's cause; refuses a loop (``slug`` already in the chain) and calls
        nested deeper than :data:`MAX_CALL_DEPTH`."""
        mine = self._host.recipe_of(ctx.recipe_uid)
        me = mine.id if mine is not None else ctx.recipe_uid
        parent = ctx.event.caused_by
        chain = (*(parent.chain if parent else ()), me)
        path = " → ".join((*chain, slug))
        if slug in chain:
            raise PermanentError(f"call loop refused: {slug} is already in the chain {path}")
        if call_depth(ctx.event) + 1 > MAX_CALL_DEPTH:
            raise PermanentError(f"calls nest deeper than {MAX_CALL_DEPTH}: {path}")
        return CausedBy(ctx.run_id, ctx.recipe_uid, ctx.event.depth + 1, chain)

    async def _settle(self, caller: str, called: str) -> None:
        """After the caller parked: if the called run ended before that (its wake found the
        caller's job still held), wake the caller now."""
        status = self._host.db.read_sync(lambda tx: _status(tx, called))
        if status is None or status in FINAL:
            now = self._host.clock.now()
            await self._host.db.writer.write(
                lambda tx: self._host.queue.hasten(tx, "run", caller, now)
            )


def call_depth(event: Event) -> int:
    """How many calls led to a run of ``event`` (0: it was not called)."""
    if event.type != CALLED:
        return 0
    caller = event.payload.get("caller")
    return int(caller.get("depth", 1)) if isinstance(caller, dict) else 1


def caller_of(event: Event) -> str | None:
    """The run that waits for (or at least started) a run of ``event``, if it was called."""
    if event.type != CALLED:
        return None
    caller = event.payload.get("caller")
    found = caller.get("run_id") if isinstance(caller, dict) else None
    return found if isinstance(found, str) else None


def callers(tx: Tx, run_ids: Sequence[str]) -> list[str]:
    """The calling runs of those of ``run_ids`` that were called."""
    query = (
        select(EVENTS.c.payload)
        .select_from(RUNS.join(EVENTS, EVENTS.c.id == RUNS.c.event_id))
        .where(RUNS.c.id.in_(list(run_ids)), EVENTS.c.type == CALLED)
    )
    found = []
    for (payload,) in tx.conn.execute(query):
        caller = (payload or {}).get("caller") or {}
        if isinstance(caller.get("run_id"), str):
            found.append(caller["run_id"])
    return found


def waited_for(tx: Tx, run_ids: Sequence[str]) -> list[str]:
    """The called runs that runs of ``run_ids`` wait for (their waiting call steps)."""
    query = select(STEPS.c.output).where(
        STEPS.c.run_id.in_(list(run_ids)), STEPS.c.status == StepStatus.WAITING
    )
    found = []
    for (output,) in tx.conn.execute(query):
        call = (output or {}).get("call") or {}
        if isinstance(call.get("run_id"), str):
            found.append(call["run_id"])
    return found


def _caller(ctx: ActionContext, caused: CausedBy) -> dict[str, Any]:
    return {
        "run_id": ctx.run_id,
        "recipe": caused.chain[-1],
        "step": ctx.step_id,
        "depth": call_depth(ctx.event) + 1,
    }


def _run_of(tx: Tx, event_id: str, uid: str) -> Any:
    query = select(RUNS.c.id, RUNS.c.status, RUNS.c.status_reason, RUNS.c.created_at).where(
        RUNS.c.event_id == event_id, RUNS.c.recipe_uid == uid
    )
    return tx.conn.execute(query).first()


def _status(tx: Tx, run_id: str) -> str | None:
    found = tx.conn.execute(select(RUNS.c.status).where(RUNS.c.id == run_id)).scalar()
    return None if found is None else str(found)


def _results(tx: Tx, run_id: str) -> dict[str, Any]:
    """The outputs of a run's completed steps by step id (the trace's, secrets masked)."""
    query = select(STEPS.c.step_id, STEPS.c.status, STEPS.c.output).where(
        STEPS.c.run_id == run_id, STEPS.c.index < ROW_SPAN
    )
    return {
        step_id: output
        for step_id, status, output in tx.conn.execute(query.order_by(STEPS.c.index))
        if status in DONE and output is not None
    }


def _why(result: IngestResult) -> str:
    for decision in result.decisions:
        reason = getattr(decision, "reason", None)
        if reason:
            message = reason.get("message") if isinstance(reason, dict) else reason
            return str(message)
    return "its conditions or store filter did not match"


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        return parse_time(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else parse_time(value.isoformat())


def _span(length: timedelta) -> str:
    seconds = int(length.total_seconds())
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"
