"""A failed run, told: the ``sous.run.failed`` event and the alert jobs.

When a run ends ``failed``, the runner writes, in the same transaction as the run's final state:

* an event ``sous.run.failed`` (:func:`failure_notice`) naming the recipe, the step, the error
  and the run (with a link), for recipes that want to react (``caused_by`` the failed run, so a
  failing recipe on this trigger is never started by its own failure, and a chain of them stops
  at the engine's depth limit);
* when alerting is on (a handler for :data:`ALERT_FAILURE` is installed, see
  ``connectors/email/alerts.py``), a job :data:`ALERT_FAILURE` for the run, under the lock key
  of its recipe (:func:`alert_lock`), so that a recipe's alerts are decided one at a time.

A crash can lose neither: they commit with the failure or not at all.
"""

from __future__ import annotations

from typing import Any

from engine.model.events import CausedBy, NewEvent
from engine.model.recipe import Step
from engine.model.run import RunState

RUN_FAILED = "sous.run.failed"
RECIPE_DISABLED = "sous.recipe.disabled"
ALERT_FAILURE = "alert.failure"
"""Job: decide whether a failed run is e-mailed now or in its recipe's digest (ref: run id)."""
ALERT_DIGEST = "alert.digest"
"""Job: send a recipe's digest of the failures held back (ref: recipe uid)."""
ALERT_NOTICE = "alert.notice"
"""Job: e-mail a notice about a recipe at once, e.g. ``sous.recipe.disabled`` (ref: event id)."""
MAX_ERROR = 2000


def alert_lock(recipe_uid: str) -> str:
    """The lock key of a recipe's alert jobs: they never run at the same time."""
    return f"alert:{recipe_uid}"


def run_link(base: str, run_id: str) -> str:
    """Where a person sees the run (``base``: the console's URL, may be empty)."""
    return f"{base.rstrip('/')}/console/runs/{run_id}"


def failure_notice(
    state: RunState, step: Step, index: int, error: str, attempts: int, base_url: str = ""
) -> NewEvent:
    """The ``sous.run.failed`` event of a run that failed at ``step``."""
    event = state.event
    recipe = state.recipe
    parent = event.caused_by
    chain = (*parent.chain, recipe.id) if parent else (recipe.id,)
    payload: dict[str, Any] = {
        "recipe": {
            "uid": state.recipe_uid,
            "id": recipe.id,
            "name": recipe.name,
            "version": recipe.version,
        },
        "run": {"id": state.run_id, "url": run_link(base_url, state.run_id)},
        "step": {
            "id": step.id or str(index),
            "use": step.use,
            "index": index,
            "attempts": attempts,
        },
        "error": error[:MAX_ERROR],
        "event": {"id": event.id, "type": event.type},
        "store": event.store,
    }
    return NewEvent(
        type=RUN_FAILED,
        payload=payload,
        workspace=state.workspace,
        store=event.store,
        source="internal",
        dedup_key=f"{RUN_FAILED}:{state.run_id}",
        caused_by=CausedBy(state.run_id, state.recipe_uid, event.depth + 1, chain),
    )
