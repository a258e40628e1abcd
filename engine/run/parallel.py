"""``parallel`` steps: named branches of steps that run at the same time, then join, durably.

When the step starts its trace row is written ``running`` (its input lists each branch's step
ids). The worker executing the run then runs every branch as an asyncio task; the steps of a
branch run in order and read the earlier steps of their branch as ``steps.<id>`` (and the
run's earlier steps). Each step of each branch has a trace row of its own, keyed by an index
past the recipe's steps (:func:`row_index`, a range of its own beside the ``for_each`` rows of
:mod:`engine.run.foreach`) and named ``<step>.<branch>.<sub-step>``; that name is also the
sub-step's ``step_id``, so its idempotency key is ``run:notify.email_staff.mail``.

After a restart, :func:`resume` rebuilds each branch's progress from those rows: steps with
committed rows are not run again; the first one without a row (or with a ``retrying`` row)
runs, with the same key. The join: once every branch has ended, the step's row gets its output,
``{branch: {sub-step id: output}}`` (``steps.notify.email_staff.mail.sent``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.model.recipe import MAX_BRANCHES, MAX_SUB_STEPS, Step
from engine.model.run import BranchProgress, ParallelProgress
from engine.model.status import DONE, StepStatus
from engine.run.foreach import ROW_SPAN

BRANCH_ROWS = 50_000
"""The sub-step rows of the ``parallel`` at index ``i`` are numbered from
``(i + 1) * ROW_SPAN + BRANCH_ROWS``: past the rows a ``for_each`` there could have."""
RETRY_IN_BRANCH = 60.0
"""Seconds: a failed sub-step whose retry is due within this waits in its branch; one due
later fails (a branch does not park the run)."""


def row_index(index: int, branch: int, sub: int) -> int:
    """The trace row index of sub-step ``sub`` of branch number ``branch`` of the ``parallel``
    at ``index``."""
    return (index + 1) * ROW_SPAN + BRANCH_ROWS + branch * (MAX_SUB_STEPS + 1) + sub


def position(index: int, row: int) -> tuple[int, int] | None:
    """``(branch, sub)`` of a sub-step row of the ``parallel`` at ``index``, or ``None``."""
    offset = row - (index + 1) * ROW_SPAN - BRANCH_ROWS
    if not 0 <= offset < MAX_BRANCHES * (MAX_SUB_STEPS + 1):
        return None
    return divmod(offset, MAX_SUB_STEPS + 1)


def branches(step: Step) -> dict[str, list[Step]]:
    assert step.parallel is not None
    return step.parallel


def named(step: Step, branch: str, sub: Step) -> Step:
    """The sub-step as its branch runs it: its id is ``<step>.<branch>.<sub>``."""
    return sub.model_copy(update={"id": f"{step.id}.{branch}.{sub.id}"})


def start(step: Step, now: datetime) -> ParallelProgress:
    return ParallelProgress({name: BranchProgress() for name in branches(step)}, now)


def trace_input(step: Step) -> dict[str, Any]:
    """The ``parallel`` row's input: each branch's step ids, and ``fail_fast``."""
    return {
        "branches": {name: [s.id for s in subs] for name, subs in branches(step).items()},
        "fail_fast": bool(step.fail_fast),
    }


def output(progress: ParallelProgress) -> dict[str, Any]:
    """The join: every branch's step outputs, by branch and step id."""
    return {name: dict(branch.done) for name, branch in progress.branches.items()}


def failure(progress: ParallelProgress) -> tuple[str, str] | None:
    """The first branch (in the recipe's order) that stopped at a failed step, with why."""
    for name, branch in progress.branches.items():
        if branch.failed is not None:
            return name, branch.failed
    return None


def record_failed(branch: BranchProgress, sub: Step, error: str) -> None:
    """A sub-step failed for good: its branch goes on past it (``continue_on_error``) or
    stops there."""
    if sub.continue_on_error:
        branch.sub += 1
    else:
        branch.failed = f"step {sub.id}: {error}"


def resume(step: Step, index: int, row: Any, sub_rows: list[Any]) -> ParallelProgress:
    """The progress of the ``parallel`` at ``index`` from its ``running`` row and its sub-step
    rows: per branch, the steps done, and the attempts so far of the one to run next."""
    progress = start(step, row.started_at)
    names = list(branches(step))
    for sub_row in sorted(sub_rows, key=lambda r: r.index):
        where = position(index, sub_row.index)
        if where is None or where[0] >= len(names):
            continue
        name = names[where[0]]
        branch, subs = progress.branches[name], branches(step)[name]
        if where[1] != branch.sub or branch.failed is not None or branch.sub >= len(subs):
            continue  # rows of a branch are written in order: none is missing
        sub = subs[branch.sub]
        if sub_row.status in DONE:
            if sub_row.output is not None:
                branch.done[sub.id or ""] = sub_row.output
            branch.sub += 1
        elif sub_row.status == StepStatus.FAILED:
            record_failed(branch, sub, str(sub_row.error or "failed"))
        else:  # retrying: its next attempt runs
            branch.attempts = sub_row.attempts
            branch.tries = list(sub_row.attempt_log or [])
    return progress


def carried(step: Step, index: int, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sub-step rows a replay from the failed ``parallel`` at ``index`` carries over: per
    branch, its steps done before the first that did not succeed (none of a branch whose steps
    changed in the version replayed)."""
    names, kept = list(branches(step)), []
    wanted = dict.fromkeys(range(len(names)), 0)  # per branch: the sub-step to carry next
    for row in sorted(rows, key=lambda r: int(r["index"])):
        where = position(index, row["index"])
        if where is None or wanted.get(where[0], -1) != where[1]:
            continue
        subs = branches(step)[names[where[0]]]
        same = (
            where[1] < len(subs)
            and row["step_id"] == named(step, names[where[0]], subs[where[1]]).id
        )
        if row["status"] in DONE and same:
            kept.append(row)
            wanted[where[0]] += 1
        else:  # the branch runs again from here
            wanted[where[0]] = -1
    return kept
