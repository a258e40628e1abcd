"""Test runs: a recipe run for real on an event of your choosing, its reads made and its writes
recorded, not made.

A test run is a run like any other (a worker executes it, its trace is kept, it survives a
restart) with ``mode: test`` in its context. Its steps render, validate and read as usual;
a step whose action writes (``ActionSpec.writes``, or ``is_write`` for this call: an HTTP GET
reads) ends ``would_do`` with its rendered input and what it would have changed, and a wait ends
at once (``would_wait_until``). Its failure alerts nobody and does not count towards
auto-disable.

The event is stored (source ``test``, aimed at the recipe alone, so no other recipe sees it)
with a match row (stage ``test``) and the run, in one transaction with the run's job. When the
recipe's trigger filter or conditions say no, nothing is stored: the answer says which and why,
as a dry-run would.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

from engine.ingest.inbox import event_row
from engine.match.dispatcher import CompiledRecipe, decide_one
from engine.model.events import Event
from engine.model.ids import new_id
from engine.model.run import RunState
from engine.model.status import RunStatus
from engine.plan.modes import Verdict, group_of, lock_of
from engine.queue.base import NewJob
from engine.run import ledger
from engine.store.db import Tx
from engine.store.models import EventRow, MatchRow

if TYPE_CHECKING:
    from engine.contracts import OpsHost

EVENTS = EventRow.__table__  # type: ignore[attr-defined]
MATCHES = MatchRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TestRun:
    __test__ = False  # not a test class, whatever its name
    matched: bool
    stage: str
    reason: dict[str, Any] | None = None
    run_id: str | None = None
    event_id: str | None = None


async def start_test_run(engine: OpsHost, compiled: CompiledRecipe, given: Event) -> TestRun:
    """Start a test run of ``compiled`` on ``given`` (its id, source, times and target are
    replaced), or say why the recipe would not fire on it."""
    now = engine.clock.now()
    event_id, run_id = new_id("evt"), new_id("run")
    event = replace(
        given,
        id=event_id,
        source="test",
        dedup_key=f"test:{run_id}",
        received_at=now,
        occurred_at=given.occurred_at or now,
        caused_by=None,
        target_recipe=compiled.uid,
    )
    decision = decide_one(compiled, event, event.context())
    if not decision.matched:
        return TestRun(False, decision.stage, decision.reason)
    recipe = compiled.recipe
    key = engine.concurrency_key(recipe, event)
    state = RunState(run_id, compiled.uid, compiled.workspace, recipe, event, test=True)
    spread = None if engine.admission.enabled else run_id
    job = NewJob("run", run_id, lock_key=lock_of(compiled.uid, recipe, key, spread), hint=state)
    admitted = engine.admission.admit(
        run_id, group_of(compiled.uid, key), recipe, key is not None, job, forced=True
    )
    row = {
        "id": run_id,
        "workspace_id": compiled.workspace,
        "recipe_uid": compiled.uid,
        "recipe_version": compiled.version,
        "event_id": event_id,
        "store": event.store,
        "status": RunStatus.QUEUED,
        "status_reason": "test run: writes are recorded, not made",
        "concurrency_key": key,
        "next_step": 0,
        "depth": 0,
        "created_at": now,
        "context": {"mode": "test"},
    }

    def write(tx: Tx) -> None:
        tx.conn.execute(insert(EVENTS), [event_row(event)])
        reason = {"message": "a test run asked for through the API"}
        match = {
            "event_id": event_id,
            "recipe_uid": compiled.uid,
            "workspace_id": compiled.workspace,
            "recipe_version": compiled.version,
            "matched": True,
            "stage": "test",
            "reason": reason,
            "run_id": run_id,
        }
        tx.conn.execute(insert(MATCHES), [match])
        ledger.open_run(tx, row)
        if admitted.verdict == Verdict.START:
            engine.queue.enqueue(tx, [job])

    try:
        await engine.db.writer.write(write)
    except BaseException:
        started = engine.admission.forget(run_id)
        if started:
            engine.spawn(engine.enqueue(started))
        raise
    engine.announce(run_id, compiled.uid, compiled.workspace, RunStatus.QUEUED, 0)
    return TestRun(True, "matched", None, run_id, event_id)
