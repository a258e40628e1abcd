"""Changing runs from outside the runner: cancel, release or discard held runs.

Each takes many run ids and reports, per run, what happened (:class:`RunChanges`): the API
calls them for one run, bulk operations for many. A run a worker is executing right now is
cancelled at its next step boundary (the runner reads :attr:`Admission.cancel_requests`);
any other unfinished run is cancelled at once, and whatever slot it held goes to the next run
of its group in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from engine.model.status import ACTIVE, RunStatus
from engine.plan.modes import group_of, lock_of
from engine.queue.base import NewJob
from engine.run import approval, calls, ledger
from engine.store.db import Tx
from engine.store.models import JobRow, RunRow

if TYPE_CHECKING:
    from engine.contracts import OpsHost

RUNS = RunRow.__table__  # type: ignore[attr-defined]
JOBS = JobRow.__table__  # type: ignore[attr-defined]


@dataclass
class RunChanges:
    """What an operation did to each run it was given."""

    changed: dict[str, str] = field(default_factory=dict)
    """Run id → the status it has now (``cancelling``: at its next step boundary)."""
    refused: dict[str, str] = field(default_factory=dict)
    """Run id → why it was left as it was (e.g. it already finished)."""
    missing: list[str] = field(default_factory=list)
    """Run ids not found (in the workspace given)."""

    def to_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "refused": self.refused, "missing": self.missing}


def _rows(
    engine: OpsHost, run_ids: Sequence[str], workspace: str | None
) -> tuple[list[Any], list[str]]:
    wanted = list(dict.fromkeys(run_ids))

    def read(tx: Tx) -> list[Any]:
        query = select(
            RUNS.c.id,
            RUNS.c.status,
            RUNS.c.recipe_uid,
            RUNS.c.workspace_id,
            RUNS.c.concurrency_key,
            RUNS.c.next_step,
        ).where(RUNS.c.id.in_(wanted))
        if workspace is not None:
            query = query.where(RUNS.c.workspace_id == workspace)
        return list(tx.conn.execute(query).all())

    rows = engine.db.read_sync(read) if wanted else []
    found = {r.id for r in rows}
    return rows, [r for r in wanted if r not in found]


def _needs(status: str, allowed: Sequence[str], run_id: str) -> str:
    return f"run {run_id} is {status}; this needs a run that is {' or '.join(allowed)}"


async def cancel(
    engine: OpsHost, run_ids: Sequence[str], workspace: str | None, reason: str
) -> RunChanges:
    rows, missing = _rows(engine, run_ids, workspace)
    changes = RunChanges(missing=missing)
    admission = engine.admission
    allowed = (*ACTIVE, RunStatus.HELD)
    direct: list[Any] = []
    for row in rows:
        if row.status not in allowed:
            changes.refused[row.id] = _needs(row.status, allowed, row.id)
        elif row.id in engine.runner.executing:
            admission.cancel_requests[row.id] = reason
            changes.changed[row.id] = "cancelling"
        else:
            direct.append(row)
    if not direct:
        return changes
    ids = [r.id for r in direct]

    def jobs(tx: Tx) -> set[str]:
        found = tx.conn.execute(select(JOBS.c.ref).where(JOBS.c.kind == "run", JOBS.c.ref.in_(ids)))
        return {ref for (ref,) in found}

    with_job = engine.db.read_sync(jobs)
    started: list[NewJob] = []
    for row in direct:
        if row.id in with_job:  # its job must end it, even if handed out before this commits
            admission.cancel_requests[row.id] = reason
        started += admission.leave(row.id)
    now = engine.clock.now()

    def write(tx: Tx) -> list[str]:
        values = {"status": RunStatus.CANCELLED, "status_reason": reason, "finished_at": now}
        done = _move(tx, direct, allowed, values)
        approval.cancel_pending(tx, done, now)
        if started:
            engine.queue.enqueue(tx, started)
        for caller in calls.callers(tx, done):  # a caller waiting for one of them goes on
            engine.queue.hasten(tx, "run", caller, now)
        return done

    done = await engine.db.writer.write(write)
    _report(engine, changes, direct, done, RunStatus.CANCELLED, "finished meanwhile")
    await _cancel_called(engine, done, workspace)
    return changes


async def _cancel_called(engine: OpsHost, run_ids: Sequence[str], workspace: str | None) -> None:
    """The runs that cancelled runs were waiting for (recipe calls) are cancelled too."""
    called = engine.db.read_sync(lambda tx: calls.waited_for(tx, run_ids)) if run_ids else []
    if called:
        await cancel(engine, called, workspace, "the run that called it was cancelled")


def _report(
    engine: OpsHost,
    changes: RunChanges,
    rows: Sequence[Any],
    done: Sequence[str],
    status: RunStatus,
    otherwise: str,
) -> None:
    """Record each run's outcome: moved to ``status`` (and announced), or refused because it
    ``otherwise`` (it changed between the read and the write)."""
    for row in rows:
        if row.id in done:
            changes.changed[row.id] = status
            _notify(engine, row, status)
        else:
            changes.refused[row.id] = f"run {row.id} {otherwise}"


def _move(tx: Tx, rows: Sequence[Any], allowed: Sequence[str], values: dict[str, Any]) -> list[str]:
    """Set ``values`` on each run still in one of ``allowed``; the ids of those moved."""
    return [row.id for row in rows if ledger.move(tx, row.id, allowed, values)]


def _only_held(rows: Sequence[Any], changes: RunChanges) -> list[Any]:
    """The held runs among ``rows``; the others are refused in ``changes`` with the reason."""
    held = []
    for row in rows:
        if row.status != RunStatus.HELD:
            changes.refused[row.id] = _needs(row.status, (RunStatus.HELD,), row.id)
        else:
            held.append(row)
    return held


async def release(engine: OpsHost, run_ids: Sequence[str], workspace: str | None) -> RunChanges:
    rows, missing = _rows(engine, run_ids, workspace)
    changes = RunChanges(missing=missing)
    held = _only_held(rows, changes)
    if not held:
        return changes
    jobs: dict[str, NewJob] = {}
    for row in held:
        recipe = engine.recipe_of(row.recipe_uid)
        key = row.concurrency_key
        spread = None if engine.admission.enabled else row.id
        job = NewJob("run", row.id, lock_key=lock_of(row.recipe_uid, recipe, key, spread))
        admitted = engine.admission.admit(
            row.id, group_of(row.recipe_uid, key), recipe, key is not None, job, forced=True
        )
        if admitted.verdict == "start":
            jobs[row.id] = job

    def write(tx: Tx) -> list[str]:
        done = _move(
            tx, held, (RunStatus.HELD,), {"status": RunStatus.QUEUED, "status_reason": "released"}
        )
        engine.queue.enqueue(tx, [j for ref, j in jobs.items() if ref in done])
        return done

    try:
        done = await engine.db.writer.write(write)
    except BaseException:
        _give_back(engine, [r.id for r in held])
        raise
    _give_back(engine, [r.id for r in held if r.id not in done])
    _report(engine, changes, held, done, RunStatus.QUEUED, "is no longer held")
    return changes


async def discard(engine: OpsHost, run_ids: Sequence[str], workspace: str | None) -> RunChanges:
    rows, missing = _rows(engine, run_ids, workspace)
    changes = RunChanges(missing=missing)
    held = _only_held(rows, changes)
    now = engine.clock.now()

    def write(tx: Tx) -> list[str]:
        values = {
            "status": RunStatus.DISCARDED,
            "status_reason": RunStatus.DISCARDED,
            "finished_at": now,
        }
        return _move(tx, held, (RunStatus.HELD,), values)

    done = await engine.db.writer.write(write) if held else []
    _report(engine, changes, held, done, RunStatus.DISCARDED, "is no longer held")
    return changes


def _give_back(engine: OpsHost, run_ids: Sequence[str]) -> None:
    started: list[NewJob] = []
    for run_id in run_ids:
        started += engine.admission.leave(run_id)
    if started:
        engine.spawn(engine.enqueue(started))


def _notify(engine: OpsHost, row: Any, status: RunStatus) -> None:
    engine.announce(row.id, row.recipe_uid, row.workspace_id, status, row.next_step)
