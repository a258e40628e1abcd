"""Planning an ingest: the runs an event's decisions start, each through flood protection
and its recipe's mode (:mod:`engine.plan.modes`), ready to be written in one transaction.

Slots and flood counts are taken while planning (on the event loop, before the write), so that
concurrent ingests see each other's runs; if the event turns out to be a duplicate or the write
fails, :func:`undo` gives them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.match.dispatcher import CompiledRecipe, Decision
from engine.model.events import Event, NewEvent
from engine.model.ids import new_id
from engine.model.limits import pick
from engine.model.recipe import Mode
from engine.model.run import RunState
from engine.model.status import FINAL, RunStatus
from engine.plan.modes import Verdict, lock_of
from engine.queue.base import NewJob

if TYPE_CHECKING:
    from engine.contracts import PlanHost


@dataclass(slots=True)
class Plan:
    """What an event's ingest writes, and what to give back if it is not stored."""

    matches: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[NewJob] = field(default_factory=list)
    admitted: list[str] = field(default_factory=list)
    flood_taken: list[tuple[str, datetime]] = field(default_factory=list)
    supersede: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    notices: list[NewEvent] = field(default_factory=list)


def plan(engine: PlanHost, event: Event, decisions: list[Decision]) -> Plan:
    plan = Plan()
    now = engine.clock.now()
    for decision in decisions:
        compiled = decision.recipe
        run_id: str | None = None
        stage, reason_doc = decision.stage, decision.reason
        if decision.matched:
            run_id = new_id("run")
            status, reason, key = RunStatus.QUEUED, None, None
            if event.depth > engine.settings.max_depth:
                chain = " → ".join(
                    (*(event.caused_by.chain if event.caused_by else ()), compiled.recipe.id)
                )
                status, reason = (
                    RunStatus.LOOP_STOPPED,
                    f"chain deeper than {engine.settings.max_depth}: {chain}",
                )
            else:
                recipe, uid = compiled.recipe, compiled.uid
                key = engine.concurrency_key(recipe, event) if recipe.concurrency_key else None
                group = uid if key is None else f"{uid}:{key}"  # modes.group_of, inlined
                lock = group if key is not None or recipe.mode is not Mode.PARALLEL else None
                if lock is None and not engine.admission.enabled:
                    lock = lock_of(uid, recipe, key, run_id)  # max_runs, across processes
                state = RunState(run_id, uid, event.workspace, recipe, event)
                job = NewJob("run", run_id, lock_key=lock, hint=state)
                status, reason, why = _admit(engine, plan, compiled, run_id, key, group, job, now)
                if why is not None:
                    stage, reason_doc = why, {"message": reason}
            plan.runs.append(
                {
                    "id": run_id,
                    "workspace_id": event.workspace,
                    "recipe_uid": compiled.uid,
                    "recipe_version": compiled.version,
                    "event_id": event.id,
                    "store": event.store,
                    "status": status,
                    "status_reason": reason,
                    "concurrency_key": key,
                    "next_step": 0,
                    "depth": event.depth,
                    "created_at": now,
                    "finished_at": now if status in FINAL else None,
                }
            )
        plan.matches.append(
            {
                "event_id": event.id,
                "recipe_uid": compiled.uid,
                "workspace_id": event.workspace,
                "recipe_version": compiled.version,
                "matched": decision.matched,
                "stage": stage,
                "reason": reason_doc,
                "run_id": run_id,
            }
        )
    return plan


def _admit(
    engine: PlanHost,
    plan: Plan,
    compiled: CompiledRecipe,
    run_id: str,
    key: str | None,
    group: str,
    job: NewJob,
    now: datetime,
) -> tuple[RunStatus, str | None, str | None]:
    """Flood limit, then the recipe's mode: ``(status, reason, decision stage or None)``."""
    uid, recipe = compiled.uid, compiled.recipe
    flood = pick(recipe.flood, engine.settings.flood)
    window: datetime | None = None
    if flood is not None:
        fits, window = engine.floods.take(uid, flood, now)
        if not fits:
            reason = f"flood: {flood.describe()}; release or discard it"
            if engine.floods.first_hold(uid, window):
                plan.notices.append(
                    engine.autodisable.notice(
                        "sous.recipe.flooded",
                        compiled,
                        flood.describe(),
                        {"window_start": window.isoformat(), "max_runs": flood.max_runs},
                        window.isoformat(),
                    )
                )
            return RunStatus.HELD, reason, "flood"
    admitted = engine.admission.admit(run_id, group, recipe, key is not None, job)
    verdict = admitted.verdict
    if verdict is Verdict.SKIP or verdict is Verdict.HOLD:
        if window is not None:
            engine.floods.give_back(uid, window)
        return (
            (RunStatus.SKIPPED if verdict is Verdict.SKIP else RunStatus.HELD),
            admitted.reason,
            "mode",
        )
    plan.admitted.append(run_id)
    if window is not None:
        plan.flood_taken.append((uid, window))
    if admitted.supersede:
        plan.supersede.append((run_id, admitted.supersede))
    if verdict is Verdict.START:
        plan.jobs.append(job)
    return RunStatus.QUEUED, None, None


def undo(engine: PlanHost, plan: Plan) -> None:
    """The plan was not stored (a duplicate event, a failed write): give back its slots."""
    started: list[NewJob] = []
    for run_id in plan.admitted:
        started += engine.admission.forget(run_id)
    for uid, window in plan.flood_taken:
        engine.floods.give_back(uid, window)
    if started:
        engine.spawn(engine.enqueue(started))
