"""Changing runs from outside: replay, release or discard a held run, cancel a waiting one.

A replay is a new event aimed at the recipe (``target_recipe``) with its own run, written in
one transaction with its job. Replaying from the failed step copies the trace rows (and so the
outputs) of the steps before it, and the runner resumes there: completed steps are not repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from api.errors import ApiError, not_found
from engine.db import Tx
from engine.events import Event
from engine.ids import new_id
from engine.models import EventRow, MatchRow, RecipeRow, RecipeVersionRow, RunRow, StepRow
from engine.queue.base import NewJob
from engine.recipe import Mode, Recipe
from engine.rendering import Renderer
from engine.runner import RunState, event_from_row
from sous.container import Container

EVENTS = EventRow.__table__  # type: ignore[attr-defined]
MATCHES = MatchRow.__table__  # type: ignore[attr-defined]
RUNS = RunRow.__table__  # type: ignore[attr-defined]
STEPS = StepRow.__table__  # type: ignore[attr-defined]
VERSIONS = RecipeVersionRow.__table__  # type: ignore[attr-defined]
RECIPES = RecipeRow.__table__  # type: ignore[attr-defined]

CANCELLABLE = ("queued", "retrying", "waiting")


@dataclass
class Loaded:
    run: Any
    event: Event
    recipe: Recipe


def _load(conn: Connection, workspace: str, run_id: str, version: int | None = None) -> Loaded:
    run = conn.execute(
        select(RUNS).where(RUNS.c.id == run_id, RUNS.c.workspace_id == workspace)
    ).first()
    if run is None:
        raise not_found("run", run_id)
    event = event_from_row(conn.execute(select(EVENTS).where(EVENTS.c.id == run.event_id)).one())
    wanted = version or run.recipe_version
    doc = conn.execute(
        select(VERSIONS.c.document).where(
            VERSIONS.c.recipe_uid == run.recipe_uid, VERSIONS.c.version == wanted
        )
    ).scalar_one_or_none()
    if doc is None:
        raise ApiError(
            409, f"version {wanted} of the run's recipe is gone (was the recipe deleted?)"
        )
    return Loaded(run, event, Recipe.model_validate(doc))


def lock_for(
    uid: str, recipe: Recipe, event: Event, container: Container
) -> tuple[str | None, str | None]:
    """The run's concurrency key and queue lock key, as the engine computes them at dispatch."""
    key: str | None = None
    if recipe.concurrency_key:
        try:
            rendered = Renderer(container.clock.now).render(
                recipe.concurrency_key, event.context(), "concurrency_key"
            )
            key = str(rendered)[:200]
        except Exception:
            key = "*"
    if key is not None:
        return key, f"{uid}:{key}"
    return None, (uid if recipe.mode in (Mode.QUEUED, Mode.SINGLE, Mode.RESTART) else None)


def _first_step(
    conn: Connection, loaded: Loaded, start: Literal["start", "failed_step"]
) -> tuple[int, list[dict[str, Any]]]:
    if start == "start":
        return 0, []
    query = select(STEPS).where(STEPS.c.run_id == loaded.run.id).order_by(STEPS.c.index)
    steps = [dict(row._mapping) for row in conn.execute(query)]
    failed: int | None = next((s["index"] for s in steps if s["status"] == "failed"), None)
    if failed is None:
        raise ApiError(409, f"run {loaded.run.id} has no failed step; replay it from the start")
    earlier = [s for s in steps if s["index"] < failed]
    planned = [(step.id, step.use) for step in loaded.recipe.actions[:failed]]
    if [(s["step_id"], s["use"]) for s in earlier] != planned:
        message = "the recipe's steps before the failed one changed; replay from the start"
        raise ApiError(409, message)
    return failed, earlier


async def replay(
    container: Container,
    workspace: str,
    run_id: str,
    start: Literal["start", "failed_step"],
    which: Literal["original", "current"],
) -> dict[str, Any]:
    def write(tx: Tx) -> dict[str, Any]:
        conn = tx.conn
        run = _load(conn, workspace, run_id).run
        version = run.recipe_version
        if which == "current":
            version = conn.execute(
                select(RECIPES.c.version).where(RECIPES.c.uid == run.recipe_uid)
            ).scalar_one_or_none()
            if version is None:
                raise ApiError(409, "the run's recipe was deleted; replay the original version")
        loaded = _load(conn, workspace, run_id, version)
        first, copied = _first_step(conn, loaded, start)
        now = container.clock.now()
        event_id, new_run = new_id("evt"), new_id("run")
        _write_event(conn, loaded, event_id, now)
        key, lock = lock_for(run.recipe_uid, loaded.recipe, loaded.event, container)
        conn.execute(insert(MATCHES), [_match(loaded, event_id, new_run, version)])
        conn.execute(insert(RUNS), [_run(loaded, event_id, new_run, version, first, key, now)])
        if copied:
            conn.execute(insert(STEPS), [{**s, "run_id": new_run} for s in copied])
        container.engine.queue.enqueue(tx, [NewJob("run", new_run, lock_key=lock)])
        return {
            "run_id": new_run,
            "event_id": event_id,
            "recipe_version": version,
            "from_step": first,
        }

    result: dict[str, Any] = await container.db.writer.write(write)
    return result


def _write_event(conn: Connection, loaded: Loaded, event_id: str, now: datetime) -> None:
    run, event = loaded.run, loaded.event
    taken = conn.execute(
        select(func.count()).where(
            EVENTS.c.workspace_id == run.workspace_id, EVENTS.c.dedup_key.like(f"replay:{run.id}:%")
        )
    ).scalar_one()
    row = {
        "id": event_id,
        "workspace_id": run.workspace_id,
        "store": event.store,
        "type": event.type,
        "payload": event.payload,
        "source": "replay",
        "dedup_key": f"replay:{run.id}:{taken + 1}",
        "occurred_at": event.occurred_at,
        "received_at": now,
        "caused_by": event.caused_by.to_dict() if event.caused_by else None,
        "target_recipe": run.recipe_uid,
        "dispatched": True,
    }
    conn.execute(insert(EVENTS), [row])


def _match(loaded: Loaded, event_id: str, run_id: str, version: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "recipe_uid": loaded.run.recipe_uid,
        "workspace_id": loaded.run.workspace_id,
        "recipe_version": version,
        "matched": True,
        "stage": "replay",
        "reason": {"message": f"replay of run {loaded.run.id}", "replay_of": loaded.run.id},
        "run_id": run_id,
    }


def _run(
    loaded: Loaded,
    event_id: str,
    run_id: str,
    version: int,
    first: int,
    key: str | None,
    now: datetime,
) -> dict[str, Any]:
    old = loaded.run
    return {
        "id": run_id,
        "workspace_id": old.workspace_id,
        "recipe_uid": old.recipe_uid,
        "recipe_version": version,
        "event_id": event_id,
        "store": old.store,
        "status": "queued",
        "status_reason": f"replay of {old.id}",
        "concurrency_key": key,
        "next_step": first,
        "depth": old.depth,
        "created_at": now,
    }


async def set_status(
    container: Container,
    workspace: str,
    run_id: str,
    to: str,
    allowed: tuple[str, ...],
    reason: str,
) -> None:
    """Move a run from one of ``allowed`` to ``to``; a queued run also gets its job back."""

    def write(tx: Tx) -> Loaded:
        loaded = _load(tx.conn, workspace, run_id)
        final = to in ("cancelled", "discarded")
        values: dict[str, Any] = {"status": to, "status_reason": reason}
        if final:
            values["finished_at"] = container.clock.now()
        changed = tx.conn.execute(
            update(RUNS).where(RUNS.c.id == run_id, RUNS.c.status.in_(allowed)).values(**values)
        ).rowcount
        if not changed:
            need = " or ".join(allowed)
            raise ApiError(
                409, f"run {run_id} is {loaded.run.status}; this needs a run that is {need}"
            )
        if to == "queued":
            _, lock = lock_for(loaded.run.recipe_uid, loaded.recipe, loaded.event, container)
            container.engine.queue.enqueue(tx, [NewJob("run", run_id, lock_key=lock)])
        return loaded

    loaded = await container.db.writer.write(write)
    state = RunState(
        run_id, loaded.run.recipe_uid, workspace, loaded.recipe, loaded.event, loaded.run.next_step
    )
    container.engine.notify_run(state, to)
