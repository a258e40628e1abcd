"""The run ledger: the one place that writes run and step rows — a run's trace.

Every writer of a run goes through here, inside its caller's transaction:

* :func:`open_runs` — the runs an event starts (written with the event, by the inbox);
* :func:`open_replay` — a replayed run, with the trace rows it carries over;
* :func:`open_run` — a run started by hand (a test run);
* :func:`record` — after each attempt, the step's trace row and the run's new state (the runner);
* :func:`move` — a status change that holds only while the run is still where it was (run control);
* :func:`purge` — ended runs and their steps, past their retention.

:func:`step_row` builds a trace row from what the runner recorded of an attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, update

from engine.model.recipe import Step
from engine.model.status import RunStatus
from engine.store.db import Tx
from engine.store.models import ApprovalRow, RunRow, StepRow
from engine.store.usage import usage_key

RUNS = RunRow.__table__  # type: ignore[attr-defined]
STEPS = StepRow.__table__  # type: ignore[attr-defined]
APPROVALS = ApprovalRow.__table__  # type: ignore[attr-defined]


def step_row(run_id: str, index: int, step: Step, record: dict[str, Any]) -> dict[str, Any]:
    """A step's trace row from what the runner recorded of an attempt."""
    return {
        "run_id": run_id,
        "index": index,
        "step_id": (step.id or str(index))[:80],
        "use": step.use,
        "status": record["status"],
        "attempts": record["attempts"],
        "input": record.get("input"),
        "output": record.get("output"),
        "error": (record.get("error") or None) and str(record["error"])[:4000],
        "started_at": record.get("started_at"),
        "finished_at": record.get("finished_at"),
        "duration_ms": record.get("duration_ms"),
        "output_sealed": record.get("output_sealed"),
        "attempt_log": record.get("attempt_log"),
    }


def open_runs(tx: Tx, rows: list[dict[str, Any]]) -> None:
    """New run rows, sent with the rest of the group commit (each counted as a run of its
    workspace, store and recipe: :mod:`engine.store.usage`)."""
    if rows:
        tx.insert(RUNS, rows)
        for row in rows:
            _count_run(tx, row)


def _count_run(tx: Tx, row: dict[str, Any]) -> None:
    key = usage_key(row["workspace_id"], row["created_at"], row.get("store"), row["recipe_uid"])
    tx.count(key, "runs")


def open_replay(tx: Tx, run: dict[str, Any], steps: Sequence[dict[str, Any]]) -> None:
    """A replayed run and the trace rows it carries over (written at once: the replay reads
    back what it wrote in the same transaction)."""
    tx.conn.execute(insert(RUNS), [run])
    _count_run(tx, run)
    if steps:
        tx.conn.execute(insert(STEPS), [{**s, "run_id": run["id"]} for s in steps])


def open_run(tx: Tx, run: dict[str, Any]) -> None:
    """A run started outside dispatch (a test run), written at once."""
    tx.conn.execute(insert(RUNS), [run])


def record(
    tx: Tx, run_id: str, values: dict[str, Any], step: dict[str, Any] | None, *, again: bool
) -> None:
    """The run's new state, with the trace row of the step just attempted (``again``: a row
    for it may exist already — a retry, or a step resumed after a crash — and is replaced)."""
    if step is not None:
        tx.insert(STEPS, [step], upsert=again)
    tx.update(RUNS, {"id": run_id}, values)


def record_unless_cancelled(
    tx: Tx, run_id: str, values: dict[str, Any], step: dict[str, Any] | None, *, again: bool
) -> bool:
    """:func:`record`, unless another process cancelled the run meanwhile (its status is then
    left as that process wrote it); whether the run's state was written. The step's trace row
    is written either way: the step was attempted."""
    if step is not None:
        tx.insert(STEPS, [step], upsert=again)
    return move(tx, run_id, [s for s in RunStatus if s != RunStatus.CANCELLED], values)


def move(tx: Tx, run_id: str, allowed: Sequence[str], values: dict[str, Any]) -> bool:
    """Set ``values`` on the run if it is still in one of ``allowed``; whether it was."""
    moved = tx.conn.execute(
        update(RUNS).where(RUNS.c.id == run_id, RUNS.c.status.in_(allowed)).values(values)
    ).rowcount
    return bool(moved)


def purge(tx: Tx, run_ids: Sequence[str]) -> tuple[int, int]:
    """Delete the runs with their steps and approvals; ``(runs, steps)`` deleted."""
    tx.conn.execute(delete(APPROVALS).where(APPROVALS.c.run_id.in_(run_ids)))
    steps = tx.conn.execute(delete(STEPS).where(STEPS.c.run_id.in_(run_ids))).rowcount
    runs = tx.conn.execute(delete(RUNS).where(RUNS.c.id.in_(run_ids))).rowcount
    return int(runs), int(steps)
