"""Retention: finished runs, their traces and old events are deleted after a while.

Failures are kept longer than successes (they are what someone comes back to read). A run is
deleted with its steps once it has been finished for longer than its status's keep time; runs
that have not finished (queued, running, retrying, held, …) are never touched. An event is
deleted with its match rows (the dispatch decisions) once it is older than ``events`` and no
run and no queued job refers to it any more, so an event stays as long as any of its runs does.
Audit log entries go once they are older than ``audit``.

The cleanup deletes in batches of ``batch_size`` runs or events (each with its child rows) per
transaction, through the engine's writer, and yields between batches, so ingestion and runs go
on while it works. :meth:`Retention.run` is what the scheduler calls periodically::

    scheduler.every("retention", settings.every, Retention(db, clock, settings).run)

Deleting an event also forgets its dedup key: a source that sends the same key again after
``events`` has passed is seen as new. Keep ``events`` longer than any source's redelivery window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, delete, exists, select

from engine.clock import Clock
from engine.model.status import FAILURES, SUCCESSES
from engine.run import ledger
from engine.store.audit import AuditRow
from engine.store.db import Database, Tx
from engine.store.models import EventRow, JobRow, MatchRow, RecipeRow, RunRow, StepRow
from engine.store.schedule_models import ScheduleStateRow

log = logging.getLogger("sous.retention")

EVENTS = EventRow.__table__  # type: ignore[attr-defined]
MATCHES = MatchRow.__table__  # type: ignore[attr-defined]
RUNS = RunRow.__table__  # type: ignore[attr-defined]
STEPS = StepRow.__table__  # type: ignore[attr-defined]
JOBS = JobRow.__table__  # type: ignore[attr-defined]
RECIPES = RecipeRow.__table__  # type: ignore[attr-defined]
SCHEDULE_STATE = ScheduleStateRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RetentionSettings:
    succeeded: timedelta = timedelta(days=14)
    """Keep time of runs that ended without a failure (:data:`engine.model.status.SUCCESSES`)."""
    failed: timedelta = timedelta(days=90)
    """Keep time of runs that failed, partly failed or were stopped as a loop."""
    events: timedelta = timedelta(days=14)
    """Keep time of events no run refers to (counted from when they were received)."""
    audit: timedelta = timedelta(days=365)
    """Keep time of the audit log's entries."""
    batch_size: int = 500
    """Runs or events (each with its steps or match rows) deleted per transaction."""
    pause: float = 0.0
    """Seconds to wait between batches, on the engine's clock (0: just yield)."""
    every: timedelta = timedelta(hours=1)
    """How often the scheduler runs the cleanup."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        for name in ("succeeded", "failed", "events", "audit"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"{name} must not be negative")

    @classmethod
    def days(
        cls,
        succeeded: float = 14,
        failed: float = 90,
        events: float = 14,
        audit: float = 365,
        **rest: Any,
    ) -> RetentionSettings:
        return cls(
            succeeded=timedelta(days=succeeded),
            failed=timedelta(days=failed),
            events=timedelta(days=events),
            audit=timedelta(days=audit),
            **rest,
        )


@dataclass
class RetentionReport:
    runs: int = 0
    steps: int = 0
    events: int = 0
    matches: int = 0
    schedule_states: int = 0
    audit: int = 0
    batches: list[int] = field(default_factory=list)
    """Parent rows (runs or events) deleted by each transaction, in order."""


class Retention:
    def __init__(
        self, db: Database, clock: Clock, settings: RetentionSettings | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings or RetentionSettings()
        self.last: RetentionReport | None = None

    async def run(self) -> RetentionReport:
        """Delete everything past its keep time, batch by batch; return what went."""
        now = self.clock.now()
        report = RetentionReport()
        groups = (
            (SUCCESSES, self.settings.succeeded),
            (FAILURES, self.settings.failed),
        )
        for statuses, keep in groups:
            cutoff = now - keep
            runs, steps = await self._batches(
                report, partial(self._runs, statuses=statuses, cutoff=cutoff)
            )
            report.runs += runs
            report.steps += steps
        events_cutoff = now - self.settings.events
        for workspace in self._workspaces(events_cutoff):
            events, matches = await self._batches(
                report, partial(self._events, workspace=workspace, cutoff=events_cutoff)
            )
            report.events += events
            report.matches += matches
        report.schedule_states = await self.db.writer.write(_orphan_states)
        report.audit, _ = await self._batches(
            report, partial(self._audit, cutoff=now - self.settings.audit)
        )
        self.last = report
        if report.runs or report.events:
            log.info(
                "retention: deleted %d runs (%d steps) and %d events (%d matches) in %d batches",
                report.runs,
                report.steps,
                report.events,
                report.matches,
                len(report.batches),
            )
        return report

    async def _batches(
        self, report: RetentionReport, batch: Callable[[Tx], tuple[int, int]]
    ) -> tuple[int, int]:
        """Run ``batch`` (one transaction each) until it deletes less than a full batch; the
        counts come back from the committed transaction (a batch may run twice in the writer
        when another write of its group fails)."""
        parents = children = 0
        while True:
            deleted, inside = await self.db.writer.write(batch)
            parents += deleted
            children += inside
            if deleted:
                report.batches.append(deleted)
            if deleted < self.settings.batch_size:
                return parents, children
            await self.clock.sleep(self.settings.pause)

    def _runs(self, tx: Tx, statuses: tuple[str, ...], cutoff: datetime) -> tuple[int, int]:
        ids = list(
            tx.conn.execute(
                select(RUNS.c.id)
                .where(RUNS.c.finished_at < cutoff, RUNS.c.status.in_(statuses))
                .order_by(RUNS.c.finished_at)
                .limit(self.settings.batch_size)
            ).scalars()
        )
        if not ids:
            return 0, 0
        return ledger.purge(tx, ids)

    def _workspaces(self, cutoff: datetime) -> list[str]:
        with self.db.engine.connect() as conn:
            query = select(EVENTS.c.workspace_id).where(EVENTS.c.received_at < cutoff).distinct()
            return sorted(conn.execute(query).scalars())

    def _events(self, tx: Tx, workspace: str, cutoff: datetime) -> tuple[int, int]:
        unused = and_(
            ~exists().where(RUNS.c.event_id == EVENTS.c.id),
            ~exists().where(JOBS.c.ref == EVENTS.c.id),
        )
        ids = list(
            tx.conn.execute(
                select(EVENTS.c.id)
                .where(EVENTS.c.workspace_id == workspace, EVENTS.c.received_at < cutoff, unused)
                .order_by(EVENTS.c.received_at)
                .limit(self.settings.batch_size)
            ).scalars()
        )
        if not ids:
            return 0, 0
        matches = tx.conn.execute(delete(MATCHES).where(MATCHES.c.event_id.in_(ids))).rowcount
        events = tx.conn.execute(delete(EVENTS).where(EVENTS.c.id.in_(ids))).rowcount
        return int(events), int(matches)

    def _audit(self, tx: Tx, cutoff: datetime) -> tuple[int, int]:
        ids = list(
            tx.conn.execute(
                select(AUDIT.c.id)
                .where(AUDIT.c.at < cutoff)
                .order_by(AUDIT.c.at)
                .limit(self.settings.batch_size)
            ).scalars()
        )
        if not ids:
            return 0, 0
        return int(tx.conn.execute(delete(AUDIT).where(AUDIT.c.id.in_(ids))).rowcount), 0


def _orphan_states(tx: Tx) -> int:
    """Schedule state of recipes that no longer exist."""
    gone = ~exists().where(RECIPES.c.uid == SCHEDULE_STATE.c.recipe_uid)
    return int(tx.conn.execute(delete(SCHEDULE_STATE).where(gone)).rowcount)
