"""A run's state as a worker needs it, and how it is rebuilt from the database.

A run's progress is in its row (``status``, ``next_step``, ``context``) and its step trace
rows; nothing else. :func:`load_run` rebuilds a :class:`RunState` from them after a restart:
outputs of completed steps, the failures so far, the attempts of the step to run next, and a
wait in progress.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from engine.errors import SousError
from engine.model.events import CausedBy, Event
from engine.model.recipe import Recipe
from engine.model.run import RunState
from engine.model.status import DONE, FINAL, RunStatus, StepStatus
from engine.run import foreach, parallel
from engine.store.db import Tx
from engine.store.models import EventRow, RecipeVersionRow, RunRow, StepRow
from engine.store.vault import Cipher

EVENTS = EventRow.__table__  # type: ignore[attr-defined]
RUNS = RunRow.__table__  # type: ignore[attr-defined]
STEPS = StepRow.__table__  # type: ignore[attr-defined]


log = logging.getLogger("sous.engine")


def load_run(tx: Tx, run_id: str, cipher: Cipher | None = None) -> RunState | None:
    """The state of an unfinished run, or ``None`` (finished, held, or gone)."""
    run = tx.conn.execute(select(RUNS).where(RUNS.c.id == run_id)).first()
    if run is None or run.status in FINAL or run.status == RunStatus.HELD:
        return None
    ev = tx.conn.execute(select(EVENTS).where(EVENTS.c.id == run.event_id)).one()
    versions = RecipeVersionRow.__table__  # type: ignore[attr-defined]
    doc = tx.conn.execute(
        select(versions.c.document).where(
            versions.c.recipe_uid == run.recipe_uid,
            versions.c.version == run.recipe_version,
        )
    ).scalar_one()
    steps = tx.conn.execute(
        select(STEPS).where(STEPS.c.run_id == run_id).order_by(STEPS.c.index)
    ).all()
    event = event_from_row(ev)
    if run.context and isinstance(run.context.get("payload"), dict):
        event = replace(event, payload=run.context["payload"], meta={"refreshed": True})
    state = RunState(
        run_id=run.id,
        recipe_uid=run.recipe_uid,
        workspace=run.workspace_id,
        recipe=Recipe.model_validate(doc),
        event=event,
        next_step=run.next_step,
        resumed=True,
        test=(run.context or {}).get("mode") == "test",
    )
    for step in steps:
        if step.status == StepStatus.FAILED:
            state.failures += 1
        if foreach.is_sub_row(step._mapping["index"]):
            continue
        if step.status in DONE and step.output is not None:
            state.outputs[step.step_id] = step_output(step.output, step.output_sealed, cipher)
        if step.index == run.next_step:
            state.attempts = step.attempts
            state.tries = list(step.attempt_log or [])
            if step.status == StepStatus.WAITING and step.output:
                state.wait = {"output": step.output, "input": step.input}
            if step.status == StepStatus.RUNNING:
                _resume_sub_steps(state, step, list(steps))
    return state


def _resume_sub_steps(state: RunState, row: Any, rows: list[Any]) -> None:
    """A ``for_each`` part way through its items (where it was, and the attempts so far of the
    sub-step to run next), or a ``parallel`` part way through its branches."""
    index = state.next_step
    step = state.recipe.actions[index]
    subs = [r for r in rows if foreach.is_sub_row(r.index)]
    if step.is_parallel():
        state.branches = parallel.resume(step, index, row, subs)
        return
    each, pending = foreach.resume(step, index, row, subs)
    state.each = each
    state.attempts = pending.attempts if pending is not None else 0
    state.tries = list(pending.attempt_log or []) if pending is not None else []


def seal(cipher: Cipher | None, output: Any) -> str | None:
    """``output`` encrypted for the step row (``None`` without a cipher: then a run resumed
    after a restart sees the trace's masks)."""
    return cipher.encrypt(json.dumps(output)) if cipher is not None else None


def step_output(output: Any, sealed: str | None, cipher: Cipher | None) -> Any:
    """A completed step's output as later steps read it: the sealed original when the trace
    masked secrets (and the cipher can open it), else the trace's ``output``."""
    if sealed and cipher is not None:
        try:
            return json.loads(cipher.decrypt(sealed))
        except (SousError, ValueError):  # another secret key, or damaged: the trace will do
            log.warning("a sealed step output could not be opened; the trace's is used")
    return output


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def load_event(tx: Tx, event_id: str) -> Event | None:
    row = tx.conn.execute(select(EVENTS).where(EVENTS.c.id == event_id)).first()
    return None if row is None else event_from_row(row)


def event_from_row(row: Any) -> Event:
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
