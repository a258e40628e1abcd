"""Backtest: what a recipe (saved, or a draft) would have done over the events of a time range.

The stored events of the recipe's trigger type received within ``[since, until)`` are read in
pages from the read-only side of the database (a page per short read transaction, so a long
backtest never holds a snapshot, nor the write lock) and put through the dispatcher's own
decision (:func:`~engine.match.dispatcher.decide_one`) with the recipe's conditions compiled
once. Nothing is executed and nothing is written: no run, no match row, no job.

The report says how often the recipe would have fired (in all and per day), on which products,
orders, customers… (distinct counts and the most frequent, bounded), and which stage said no
how many times: the trigger's own filter, the recipe's own writes (loop guard) or the
conditions — counted per condition (the first that said no, as the dispatcher decides), each
with the explanation of its first rejection.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, String, or_, select, type_coerce

from engine import conditions
from engine.match.dispatcher import CompiledRecipe, decide_one, explanation_dict
from engine.model.events import CausedBy, Event
from engine.model.recipe import Recipe
from engine.registry import Registry
from engine.store.db import Database, Tx
from engine.store.models import EventRow

EVENTS = EventRow.__table__  # type: ignore[attr-defined]

PAGE = 2_000
"""Events read per read transaction."""
MAX_EVENTS = 1_000_000
"""The most events one backtest reads unless told otherwise; past it the report says
``complete: false`` and where it stopped."""
SUBJECTS = ("order", "product", "variant", "customer", "shipment", "backorder")
"""Payload keys naming what an event is about, in the order they are looked for."""
TOP = 20
"""How many of the most-fired-on subjects of each kind the report lists."""
SAMPLE = 20
"""How many of the events it would have fired on the report lists (the first ones)."""
DISTINCT = 100_000
"""The most distinct subjects counted per kind (memory stays bounded over any range)."""

_COLUMNS = (
    "id",
    "store",
    "payload",
    "source",
    "dedup_key",
    "occurred_at",
    "received_at",
    "caused_by",
)

Progress = Callable[[int, int], None]
"""Told ``(events read, would have fired)`` after each page."""


@dataclass
class ConditionTally:
    index: int
    rule: Any
    rejected: int = 0
    example: dict[str, Any] | None = None
    """The explanation of its first rejection, with that event's id."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "rule": self.rule,
            "rejected": self.rejected,
            "example": self.example,
        }


@dataclass
class BacktestReport:
    recipe: str
    trigger: str
    since: datetime
    until: datetime | None
    """``None``: up to the newest event stored."""
    events: int = 0
    """Events of the trigger type (and the recipe's stores) read within the range."""
    fired: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    """By stage: ``trigger`` (its filter), ``loop`` (the recipe's own write), ``conditions``."""
    conditions: list[ConditionTally] = field(default_factory=list)
    per_day: Counter[str] = field(default_factory=Counter)
    subjects: dict[str, Counter[str]] = field(default_factory=dict)
    names: dict[tuple[str, str], str] = field(default_factory=dict)
    first: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True
    stopped_at: str | None = None
    """When not complete: the receive time of the last event read."""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "trigger": self.trigger,
            "since": self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "events": self.events,
            "fired": self.fired,
            "fire_rate": round(self.fired / self.events, 4) if self.events else 0.0,
            "rejected": dict(self.rejected),
            "conditions": [c.to_dict() for c in self.conditions],
            "per_day": dict(sorted(self.per_day.items())),
            "subjects": {kind: self._subjects(kind) for kind in sorted(self.subjects)},
            "first": self.first,
            "complete": self.complete,
            "stopped_at": self.stopped_at,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events / self.seconds) if self.seconds else None,
        }

    def _subjects(self, kind: str) -> dict[str, Any]:
        counts = self.subjects[kind]
        top = [
            {"id": sid, "name": self.names.get((kind, sid)), "fires": n}
            for sid, n in counts.most_common(TOP)
        ]
        return {"distinct": len(counts), "capped": len(counts) >= DISTINCT, "top": top}


def _text(column: Any) -> ColumnElement[Any]:
    return type_coerce(column, String).label(column.name)


def _when(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def subject(payload: dict[str, Any]) -> tuple[str, str, str | None] | None:
    """``(kind, id, name)`` of what an event is about: its order, product, customer…"""
    for kind in SUBJECTS:
        found = payload.get(kind)
        if isinstance(found, dict) and found.get("id") is not None:
            name = found.get("name") or found.get("sku") or found.get("email")
            return kind, str(found["id"]), None if name is None else str(name)[:200]
    order_id = payload.get("order_id")
    if order_id is not None and not isinstance(order_id, dict | list):
        return "order", str(order_id), None
    return None


class Backtest:
    """One backtest of ``recipe`` (``uid`` for a saved one: its own writes are loops)."""

    def __init__(
        self,
        recipe: Recipe,
        registry: Registry,
        workspace: str,
        *,
        uid: str | None = None,
        version: int | None = None,
    ) -> None:
        self.uid = uid or "backtest"
        self.compiled = CompiledRecipe.build(
            self.uid, workspace, version or recipe.version or 1, recipe, registry
        )
        self.workspace = workspace
        self.stores = recipe.stores()

    def run(
        self,
        db: Database,
        since: datetime,
        until: datetime | None,
        *,
        limit: int = MAX_EVENTS,
        progress: Progress | None = None,
    ) -> BacktestReport:
        recipe = self.compiled.recipe
        report = BacktestReport(recipe.id, recipe.trigger.type, since, until)
        report.conditions = [ConditionTally(i, rule) for i, rule in enumerate(recipe.conditions)]
        start = time.perf_counter()
        limit = max(1, limit)
        after = ""
        while True:
            size = min(PAGE, limit - report.events)
            rows = db.read_sync(partial(self._page, since, until, after, size))
            for row in rows:
                self.consider(report, self.event(row))
            report.events += len(rows)
            if progress is not None:
                progress(report.events, report.fired)
            if len(rows) < size:  # the range is read to its end
                break
            after = rows[-1].id
            if report.events >= limit:
                if db.read_sync(partial(self._page, since, until, after, 1)):
                    report.complete = False
                    report.stopped_at = self.event(rows[-1]).received_at.isoformat()
                break
        report.seconds = time.perf_counter() - start
        return report

    def _page(self, since: datetime, until: datetime | None, after: str, size: int, tx: Tx) -> Any:
        c = EVENTS.c
        raw = tx.conn.dialect.name == "sqlite"
        query = (
            select(*(_text(c[name]) if raw else c[name] for name in _COLUMNS))
            .where(
                c.workspace_id == self.workspace,
                c.type == self.compiled.recipe.trigger.type,
                c.received_at >= since,
                c.id > after,
                # an event meant for one recipe alone (a schedule's firing, a replay) is not
                # this recipe's unless it names it
                or_(c.target_recipe.is_(None), c.target_recipe == self.uid),
            )
            .order_by(c.id)
            .limit(size)
        )
        if until is not None:
            query = query.where(c.received_at < until)
        if self.stores is not None:
            query = query.where(c.store.in_(self.stores))
        return tx.conn.execute(query).all()

    def event(self, row: Any) -> Event:
        """The event of a row of :meth:`_page` (on SQLite its JSON and times come as text:
        decoded here without the column types' generic processing, the backtest's hot path)."""
        payload = row.payload
        caused = row.caused_by
        return Event(
            id=row.id,
            type=self.compiled.recipe.trigger.type,
            payload=(json.loads(payload) if isinstance(payload, str) else payload) or {},
            workspace=self.workspace,
            store=row.store,
            source=row.source,
            dedup_key=row.dedup_key,
            occurred_at=_when(row.occurred_at),
            received_at=_when(row.received_at),
            caused_by=CausedBy.from_dict(json.loads(caused) if isinstance(caused, str) else caused),
        )

    def consider(self, report: BacktestReport, event: Event) -> None:
        """Count what the recipe would have done on ``event``."""
        data = event.context()
        decision = decide_one(self.compiled, event, data, explain=False)
        if decision.matched:
            self._fired(report, event)
            return
        stage = decision.stage
        report.rejected[stage] = report.rejected.get(stage, 0) + 1
        if stage == "conditions" and decision.reason is not None:
            tally = report.conditions[decision.reason["condition"]]
            tally.rejected += 1
            if tally.example is None:
                explained = conditions.explain(tally.rule, data)
                tally.example = {"event_id": event.id, **explanation_dict(explained)}

    def _fired(self, report: BacktestReport, event: Event) -> None:
        report.fired += 1
        report.per_day[event.received_at.date().isoformat()] += 1
        found = subject(event.payload)
        if found is not None:
            kind, sid, name = found
            counts = report.subjects.setdefault(kind, Counter())
            if sid in counts or len(counts) < DISTINCT:
                counts[sid] += 1
                if name is not None:
                    report.names.setdefault((kind, sid), name)
        if len(report.first) < SAMPLE:
            report.first.append(
                {
                    "event_id": event.id,
                    "received_at": event.received_at.isoformat(),
                    "store": event.store,
                    "subject": None if found is None else {"kind": found[0], "id": found[1]},
                }
            )


def backtest(
    db: Database,
    registry: Registry,
    recipe: Recipe,
    workspace: str,
    since: datetime,
    until: datetime | None = None,
    *,
    uid: str | None = None,
    limit: int = MAX_EVENTS,
    progress: Progress | None = None,
) -> BacktestReport:
    """What ``recipe`` would have done on the events of ``workspace`` received within
    ``[since, until)`` (``until`` ``None``: up to the newest). It reads, and only reads."""
    return Backtest(recipe, registry, workspace, uid=uid).run(
        db, since, until, limit=limit, progress=progress
    )
