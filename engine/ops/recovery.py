"""Crash recovery: what :meth:`OpsHost.start` does before the workers start, and what happens to
a job whose handler failed unexpectedly.

Nothing a run needs lives only in memory. After a crash:

* the queue takes back every job row (:meth:`JobQueue.recover`): jobs claimed by the dead
  process are handed out again, delayed ones (retries, waits) keep their due time;
* the run slots (:mod:`engine.plan.modes`) are rebuilt from the runs left ``queued``, ``running``,
  ``retrying`` or ``waiting``: a run with a job row holds its slot; a ``queued`` run without one
  waits its turn as before; a going run that somehow lost its job gets a new one;
* each run resumes from its first step without a committed trace row (see
  :mod:`engine.run.runner`), so a step whose action ran but whose trace did not commit runs again
  with the same idempotency key, and no completed step runs twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from engine.model.recipe import Recipe
from engine.model.status import ACTIVE, RunStatus
from engine.plan.modes import group_of, lock_of, slots
from engine.queue.base import NewJob
from engine.store.db import Tx
from engine.store.models import JobRow, RunRow

if TYPE_CHECKING:
    from engine.contracts import OpsHost

log = logging.getLogger("sous.engine")
RUNS = RunRow.__table__  # type: ignore[attr-defined]
JOBS = JobRow.__table__  # type: ignore[attr-defined]


async def rebuild(engine: OpsHost) -> int:
    """Rebuild the run slots from the database and start the runs whose turn it is; returns
    how many runs were found unfinished."""
    if not engine.admission.enabled:
        return 0

    def read(tx: Tx) -> tuple[list[tuple[str, str, str | None, str]], set[str]]:
        runs = tx.conn.execute(
            select(RUNS.c.id, RUNS.c.recipe_uid, RUNS.c.concurrency_key, RUNS.c.status)
            .where(RUNS.c.status.in_(ACTIVE))
            .order_by(RUNS.c.created_at, RUNS.c.id)
        ).all()
        refs = tx.conn.execute(select(JOBS.c.ref).where(JOBS.c.kind == "run")).all()
        return [(r[0], r[1], r[2], r[3]) for r in runs], {ref for (ref,) in refs}

    runs, with_job = engine.db.read_sync(read)
    recipes: dict[str, Recipe | None] = {}
    orphans: list[NewJob] = []
    for run_id, uid, key, status in runs:
        if engine.admission.group(run_id) is not None:  # admitted by this process already
            continue
        if uid not in recipes:
            recipes[uid] = engine.recipe_of(uid)
        recipe = recipes[uid]
        capacity, _ = slots(recipe, key is not None)
        group = group_of(uid, key)
        job = NewJob("run", run_id, lock_key=lock_of(uid, recipe, key))
        if run_id in with_job:
            engine.admission.restore(group, capacity, run_id, None)
        elif status == RunStatus.QUEUED:
            engine.admission.restore(group, capacity, run_id, job)
        else:  # going, but its job is gone: give it one
            log.warning("run %s was %s without a job; it resumes", run_id, status)
            engine.admission.restore(group, capacity, run_id, None)
            orphans.append(job)
    started = engine.admission.pump_all() + orphans
    if started:
        await engine.enqueue(started)
    return len(runs)
