"""The inbox: a :class:`~engine.model.events.NewEvent` becomes a stored
:class:`~engine.model.events.Event`, with what it starts, in one transaction.

A connector (a BigCommerce webhook, an inbound hook, a schedule, the API) hands the engine a
``NewEvent``; :func:`received` stamps it with an id and the time; :func:`store` writes its inbox
row — or finds the row already there under the same ``dedup_key`` and stores nothing else — then
the plan's match rows, runs and jobs (:mod:`engine.plan.planning` decides them beforehand).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from engine.contracts import IngestResult
from engine.match.dispatcher import Decision
from engine.model.events import Event, NewEvent
from engine.model.ids import new_id
from engine.plan.planning import Plan
from engine.queue.base import JobQueue, NewJob
from engine.run import ledger
from engine.store.bulk import insert_ignoring_conflicts
from engine.store.db import Tx
from engine.store.models import EventRow, MatchRow, RunRow

EVENTS = EventRow.__table__  # type: ignore[attr-defined]
MATCHES = MatchRow.__table__  # type: ignore[attr-defined]
RUNS = RunRow.__table__  # type: ignore[attr-defined]


def received(new: NewEvent, now: datetime) -> Event:
    """``new`` as the event the engine stores: with its id, and received ``now``."""
    event_id = new_id("evt")
    return Event(
        id=event_id,
        type=new.type,
        payload=new.payload,
        workspace=new.workspace,
        store=new.store,
        source=new.source,
        dedup_key=new.dedup_key or event_id,
        occurred_at=new.occurred_at or now,
        received_at=now,
        caused_by=new.caused_by,
        target_recipe=new.target_recipe,
    )


def event_row(event: Event) -> dict[str, Any]:
    """The inbox row of ``event``."""
    return {
        "id": event.id,
        "workspace_id": event.workspace,
        "store": event.store,
        "type": event.type,
        "payload": event.payload,
        "source": event.source,
        "dedup_key": event.dedup_key,
        "occurred_at": event.occurred_at,
        "received_at": event.received_at,
        "caused_by": event.caused_by.to_dict() if event.caused_by else None,
        "target_recipe": event.target_recipe,
        "dispatched": True,
    }


def store(
    tx: Tx,
    queue: JobQueue,
    event: Event,
    decisions: list[Decision],
    plan: Plan,
    follow_up: Sequence[str],
) -> IngestResult:
    """Write ``event`` with its plan; a duplicate (same workspace and key) writes nothing and
    answers with the stored event's id."""
    if not insert_ignoring_conflicts(tx.conn, EVENTS, event_row(event)):
        existing = tx.conn.execute(
            select(EVENTS.c.id).where(
                EVENTS.c.workspace_id == event.workspace,
                EVENTS.c.dedup_key == event.dedup_key,
            )
        ).scalar_one()
        return IngestResult(existing, duplicate=True)
    if plan.matches:
        tx.insert(MATCHES, plan.matches)
    ledger.open_runs(tx, plan.runs)
    if plan.jobs:
        queue.enqueue(tx, plan.jobs)
    if follow_up:
        queue.enqueue(tx, [NewJob(kind, event.id, hint=event) for kind in follow_up])
    return IngestResult(event.id, False, [r["id"] for r in plan.runs], decisions)
