"""Replay: run a run's event through its recipe again, as a new run.

A replay is a new event aimed at the recipe (``target_recipe``, source ``replay``, decision
stage ``replay``) with a new run, written in one transaction with the run's job. It runs the
version the original run ran (``version="original"``) or the recipe's current one
(``"current"``).

* ``from_step="start"`` runs every step again. The new run has its own id, so its steps have
  new idempotency keys (``new_run:step``): a replay is a request to do the work again, and a
  connector that deduplicates on keys does not mistake it for a retry of the old run.
* ``from_step="failed"`` copies the trace rows (and so the outputs) of the steps before the
  first failed one into the new run and starts there: completed writes are not repeated. The
  failed step and those after it run under the new run's keys. It needs the steps before the
  failed one to be unchanged in the version replayed. When the failed step is a ``for_each``,
  the items (and sub-steps) done before the failure are carried over too, and the loop goes on
  from the sub-step that failed; when it is a ``parallel``, each branch's steps done before
  its first step that did not succeed are carried over, and each branch goes on from there.

Replays skip flood protection and the mode's skip/hold rules (someone asked for them) but wait
for a slot of their recipe's group like any run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select

from engine.errors import ConflictError, NotFoundError
from engine.ingest.inbox import event_row
from engine.model.events import Event
from engine.model.ids import new_id
from engine.model.recipe import Recipe, Step
from engine.model.run import RunState
from engine.model.status import DONE, RunStatus, StepStatus
from engine.plan.modes import Verdict, group_of, lock_of
from engine.queue.base import NewJob
from engine.run import foreach, ledger, parallel
from engine.run.runner import event_from_row
from engine.run.runstate import step_output
from engine.store.db import Tx
from engine.store.models import EventRow, MatchRow, RecipeRow, RecipeVersionRow, RunRow, StepRow

if TYPE_CHECKING:
    from engine.contracts import OpsHost

EVENTS = EventRow.__table__  # type: ignore[attr-defined]
MATCHES = MatchRow.__table__  # type: ignore[attr-defined]
RUNS = RunRow.__table__  # type: ignore[attr-defined]
STEPS = StepRow.__table__  # type: ignore[attr-defined]
VERSIONS = RecipeVersionRow.__table__  # type: ignore[attr-defined]
RECIPES = RecipeRow.__table__  # type: ignore[attr-defined]
FROM_FAILED = ("failed", "failed_step")


@dataclass(frozen=True)
class Replayed:
    run_id: str
    event_id: str
    recipe_version: int
    from_step: int
    """The index of the first step the new run executes."""
    replay_of: str


@dataclass(frozen=True)
class RunFilter:
    """Which runs :func:`replay_many` replays: all conditions given must hold."""

    workspace: str | None = None
    recipe: str | None = None
    """A recipe id (slug, needs ``workspace``) or uid."""
    status: str | Sequence[str] = RunStatus.FAILED
    since: datetime | None = None
    """Created at or after."""
    until: datetime | None = None
    """Created before."""
    limit: int = 1000


@dataclass
class ReplayReport:
    replayed: list[Replayed] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    """Run id → why it was not replayed."""


@dataclass
class _Source:
    run: Any
    event: Event
    recipe: Recipe
    version: int
    first: int
    copied: list[dict[str, Any]]


def _read(
    engine: OpsHost, run_id: str, from_step: str, version: str, workspace: str | None
) -> _Source:
    if from_step not in ("start", *FROM_FAILED):
        raise ValueError(f"from_step is 'start' or 'failed', not {from_step!r}")
    if version not in ("original", "current"):
        raise ValueError(f"version is 'original' or 'current', not {version!r}")

    def read(tx: Tx) -> _Source:
        conn = tx.conn
        query = select(RUNS).where(RUNS.c.id == run_id)
        if workspace is not None:
            query = query.where(RUNS.c.workspace_id == workspace)
        run = conn.execute(query).first()
        if run is None:
            raise NotFoundError("run", run_id)
        wanted = run.recipe_version
        if version == "current":
            wanted = conn.execute(
                select(RECIPES.c.version).where(RECIPES.c.uid == run.recipe_uid)
            ).scalar_one_or_none()
            if wanted is None:
                raise ConflictError("the run's recipe was deleted; replay the original version")
        doc = conn.execute(
            select(VERSIONS.c.document).where(
                VERSIONS.c.recipe_uid == run.recipe_uid, VERSIONS.c.version == wanted
            )
        ).scalar_one_or_none()
        if doc is None:
            raise ConflictError(
                f"version {wanted} of the run's recipe is gone (was the recipe deleted?)"
            )
        recipe = Recipe.model_validate(doc)
        event = event_from_row(
            conn.execute(select(EVENTS).where(EVENTS.c.id == run.event_id)).one()
        )
        first, copied = 0, []
        if from_step in FROM_FAILED:
            rows = [
                dict(r._mapping)
                for r in conn.execute(
                    select(STEPS).where(STEPS.c.run_id == run_id).order_by(STEPS.c.index)
                )
            ]
            failed = next(  # a step of the recipe's, not one inside a for_each or parallel
                (
                    s["index"]
                    for s in rows
                    if s["status"] == StepStatus.FAILED and not foreach.is_sub_row(s["index"])
                ),
                None,
            )
            if failed is None:
                raise ConflictError(f"run {run_id} has no failed step; replay it from the start")
            copied = [s for s in rows if s["index"] < failed]
            planned = [(step.id, step.use) for step in recipe.actions[:failed]]
            if [(s["step_id"], s["use"]) for s in copied] != planned:
                raise ConflictError(
                    "the recipe's steps before the failed one changed; replay from the start"
                )
            if failed < len(recipe.actions) and recipe.actions[failed].has_sub_steps():
                copied += _loop_so_far(recipe.actions[failed], failed, rows)
            first = failed
        return _Source(run, event, recipe, wanted, first, copied)

    return engine.db.read_sync(read)


def _loop_so_far(loop: Step, index: int, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trace rows a replay of the failed ``for_each`` at ``index`` carries over: its row
    (``running`` again, with the items it went through) and the sub-steps done before the one
    that failed, so that the replay goes on from there. None when the loop's sub-steps changed
    in the version replayed (then the loop runs again from its first item). For a failed
    ``parallel``: its row and each branch's steps done before the one that failed
    (:func:`engine.run.parallel.carried`)."""
    [row] = [r for r in rows if r["index"] == index]
    reopened = {
        "status": StepStatus.RUNNING,
        **dict.fromkeys(("output", "output_sealed", "error", "finished_at", "duration_ms")),
    }
    if loop.is_parallel():
        return [{**row, **reopened}, *parallel.carried(loop, index, rows)]
    assert loop.steps is not None
    done: list[dict[str, Any]] = []
    for sub in sorted((r for r in rows if foreach.position(index, r["index"])), key=_index):
        item, n = foreach.position(index, sub["index"]) or (0, 0)
        if sub["status"] not in DONE or n >= len(loop.steps):
            break
        if sub["step_id"] != foreach.named(loop, item, loop.steps[n]).id:
            return []
        done.append(sub)
    return [{**row, **reopened}, *done]


def _index(row: dict[str, Any]) -> int:
    return int(row["index"])


def _replayed_event(src: _Source, event_id: str, now: datetime) -> Event:
    """The event of a replay: the original's payload, received now, aimed at its recipe."""
    return Event(
        id=event_id,
        type=src.event.type,
        payload=src.event.payload,
        workspace=src.run.workspace_id,
        store=src.event.store,
        source="replay",
        dedup_key="",  # set in the transaction
        occurred_at=src.event.occurred_at,
        received_at=now,
        caused_by=src.event.caused_by,
        target_recipe=src.run.recipe_uid,
    )


def _state(engine: OpsHost, src: _Source, run_id: str, event: Event) -> RunState:
    """The new run's state, with the outputs and failures of the steps it carries over."""
    old = src.run
    state = RunState(run_id, old.recipe_uid, old.workspace_id, src.recipe, event)
    state.next_step = src.first
    for step in src.copied:
        done = step["status"] in DONE
        if done and step["output"] is not None:
            state.outputs[step["step_id"]] = step_output(
                step["output"], step.get("output_sealed"), engine.runner.cipher
            )
        state.failures += step["status"] == StepStatus.FAILED
    loop = src.recipe.actions[src.first] if src.first < len(src.recipe.actions) else None
    rows = [SimpleNamespace(**s) for s in src.copied if s["index"] >= src.first]
    if loop is not None and rows:  # a loop goes on after the items it carries over
        if loop.is_parallel():
            state.branches = parallel.resume(loop, src.first, rows[0], rows[1:])
        elif loop.is_loop():
            state.each, _ = foreach.resume(loop, src.first, rows[0], rows[1:])
    return state


async def replay_run(
    engine: OpsHost, run_id: str, from_step: str, version: str, workspace: str | None
) -> Replayed:
    src = _read(engine, run_id, from_step, version, workspace)
    old = src.run
    now = engine.clock.now()
    event_id, new_run = new_id("evt"), new_id("run")
    event = _replayed_event(src, event_id, now)
    key = engine.concurrency_key(src.recipe, event)
    spread = None if engine.admission.enabled else new_run  # see lock_of
    state = _state(engine, src, new_run, event)
    job = NewJob(
        "run",
        new_run,
        lock_key=lock_of(old.recipe_uid, engine.recipe_of(old.recipe_uid), key, spread),
        hint=state,
    )
    current = engine.recipe_of(old.recipe_uid) or src.recipe
    admitted = engine.admission.admit(
        new_run, group_of(old.recipe_uid, key), current, key is not None, job, forced=True
    )

    def write(tx: Tx) -> None:
        conn = tx.conn
        taken = conn.execute(
            select(func.count()).where(
                EVENTS.c.workspace_id == old.workspace_id,
                EVENTS.c.dedup_key.like(f"replay:{old.id}:%"),
            )
        ).scalar_one()
        conn.execute(
            insert(EVENTS), [{**event_row(event), "dedup_key": f"replay:{old.id}:{taken + 1}"}]
        )
        conn.execute(
            insert(MATCHES),
            [
                {
                    "event_id": event_id,
                    "recipe_uid": old.recipe_uid,
                    "workspace_id": old.workspace_id,
                    "recipe_version": src.version,
                    "matched": True,
                    "stage": "replay",
                    "reason": {"message": f"replay of run {old.id}", "replay_of": old.id},
                    "run_id": new_run,
                }
            ],
        )
        ledger.open_replay(
            tx,
            {
                "id": new_run,
                "workspace_id": old.workspace_id,
                "recipe_uid": old.recipe_uid,
                "recipe_version": src.version,
                "event_id": event_id,
                "store": old.store,
                "status": RunStatus.QUEUED,
                "status_reason": f"replay of {old.id}",
                "concurrency_key": key,
                "next_step": src.first,
                "depth": old.depth,
                "created_at": now,
                "context": {"replay_of": old.id, "from_step": src.first},
            },
            src.copied,
        )
        if admitted.verdict == Verdict.START:
            engine.queue.enqueue(tx, [job])

    try:
        await engine.db.writer.write(write)
    except BaseException:
        started = engine.admission.forget(new_run)
        if started:
            engine.spawn(engine.enqueue(started))
        raise
    engine.announce(new_run, old.recipe_uid, old.workspace_id, RunStatus.QUEUED, src.first)
    return Replayed(new_run, event_id, src.version, src.first, old.id)


def select_runs(engine: OpsHost, which: RunFilter) -> list[str]:
    """The ids of the runs ``which`` names, oldest first."""

    def read(tx: Tx) -> list[str]:
        query = select(RUNS.c.id)
        if which.workspace is not None:
            query = query.where(RUNS.c.workspace_id == which.workspace)
        if which.recipe is not None:
            by_slug = select(RECIPES.c.uid).where(RECIPES.c.slug == which.recipe)
            if which.workspace is not None:
                by_slug = by_slug.where(RECIPES.c.workspace_id == which.workspace)
            query = query.where(
                (RUNS.c.recipe_uid == which.recipe) | RUNS.c.recipe_uid.in_(by_slug)
            )
        statuses = [which.status] if isinstance(which.status, str) else list(which.status)
        query = query.where(RUNS.c.status.in_(statuses))
        if which.since is not None:
            query = query.where(RUNS.c.created_at >= which.since)
        if which.until is not None:
            query = query.where(RUNS.c.created_at < which.until)
        rows = tx.conn.execute(
            query.order_by(RUNS.c.created_at, RUNS.c.id).limit(which.limit)
        ).all()
        return [r.id for r in rows]

    return engine.db.read_sync(read)


async def replay_many(
    engine: OpsHost, which: RunFilter, from_step: str, version: str
) -> ReplayReport:
    report = ReplayReport()
    ids = select_runs(engine, which)
    for start in range(0, len(ids), 100):  # a hundred at a time share group commits
        chunk = ids[start : start + 100]
        results = await asyncio.gather(
            *(replay_run(engine, run_id, from_step, version, which.workspace) for run_id in chunk),
            return_exceptions=True,
        )
        for run_id, result in zip(chunk, results, strict=True):
            if isinstance(result, Replayed):
                report.replayed.append(result)
            elif isinstance(result, NotFoundError | ConflictError):
                report.refused[run_id] = str(result)
            elif isinstance(result, BaseException):
                raise result
    return report
