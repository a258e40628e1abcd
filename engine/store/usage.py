"""Usage: runs, steps, store requests, e-mails and HTTP calls counted per workspace, store,
recipe and day (UTC).

Counting is a dictionary increment in memory (:class:`UsageMeter`, one per database); the
counts reach the database with the engine's next group commit, in the same transaction as the
writes that caused them (the :class:`~engine.store.db.Writer` calls :meth:`UsageMeter.write`
once per batch), so the hot path gains no write of its own. A batch that fails puts its counts
back for the next one.

What is counted is what is actually sent, where it is sent: a store's request by the
BigCommerce client (each attempt that reaches the wire, retries included), an e-mail when the
SMTP server took it, an HTTP call per request the outbound guard let out (each redirect hop).
Work done inside :func:`metering` (the runner wraps each step) is counted for that run's
workspace, store and recipe: a connector calls :func:`count_usage` without knowing whose it
is, or :func:`count_sent` when it knows the workspace (and store) itself, inside a step or
not. A test run sends no writes (they are recorded as would-do), so nothing of them counts.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Index, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel

METRICS = ("runs", "steps", "store_requests", "emails", "http_calls")
"""What is counted."""

Key = tuple[str, str, str, str]
"""(workspace, day ``YYYY-MM-DD``, store hash or ``""``, recipe id or ``""``)."""


class UsageRow(SQLModel, table=True):
    """One workspace's usage on one day, for one store and recipe (``""``: none)."""

    __tablename__ = "usage_day"
    __table_args__ = (Index("ix_usage_ws_day", "workspace_id", "day"),)
    workspace_id: str = Field(primary_key=True, max_length=64)
    day: str = Field(primary_key=True, max_length=10)
    store: str = Field(default="", primary_key=True, max_length=64)
    recipe: str = Field(default="", primary_key=True, max_length=80)
    runs: int = 0
    steps: int = 0
    store_requests: int = 0
    emails: int = 0
    http_calls: int = 0


class UsageMeter:
    """Counts waiting for the next commit. Thread-safe: connectors may count from threads."""

    def __init__(self) -> None:
        self._counts: dict[Key, dict[str, int]] = {}
        self._seen: dict[tuple[str, str], dict[str, int]] = {}
        self._written: dict[tuple[str, str], dict[str, int]] = {}
        self._lock = threading.Lock()

    def add(self, key: Key, metric: str, n: int = 1) -> None:
        with self._lock:
            self._add(key, metric, n)
            _tally(self._seen, key, {metric: n})

    def _add(self, key: Key, metric: str, n: int) -> None:
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = {}
        counts[metric] = counts.get(metric, 0) + n

    def seen(self, workspace: str, day: str) -> dict[str, int]:
        """Everything this process counted for ``workspace`` on ``day``, written or not."""
        with self._lock:
            return dict(self._seen.get((workspace, day), {}))

    def written(self, workspace: str, day: str) -> dict[str, int]:
        """What this process has written for ``workspace`` on ``day``."""
        with self._lock:
            return dict(self._written.get((workspace, day), {}))

    def take(self) -> dict[Key, dict[str, int]]:
        """Everything counted so far (the meter starts again from nothing)."""
        with self._lock:
            taken, self._counts = self._counts, {}
        return taken

    def put_back(self, taken: dict[Key, dict[str, int]]) -> None:
        """Counts whose write failed, kept for the next one."""
        with self._lock:
            for key, counts in taken.items():
                for metric, n in counts.items():
                    self._add(key, metric, n)

    def write(self, conn: Connection) -> dict[Key, dict[str, int]]:
        """Add the waiting counts to their rows in ``conn``'s transaction; returns them (for
        :meth:`committed`, or :meth:`put_back` should the transaction fail)."""
        taken = self.take()
        if not taken:
            return taken
        rows = [
            {"workspace_id": ws, "day": day, "store": store, "recipe": recipe}
            | {m: counts.get(m, 0) for m in METRICS}
            for (ws, day, store, recipe), counts in taken.items()
        ]
        try:
            conn.execute(_upsert(conn.dialect.name), rows)
        except BaseException:
            self.put_back(taken)
            raise
        return taken

    def committed(self, taken: dict[Key, dict[str, int]]) -> None:
        """The counts :meth:`write` returned are in the database now."""
        with self._lock:
            for key, counts in taken.items():
                _tally(self._written, key, counts)


def _tally(into: dict[tuple[str, str], dict[str, int]], key: Key, counts: dict[str, int]) -> None:
    """Add ``counts`` to the workspace's and day's tally in ``into`` (kept bounded)."""
    tally = into.get(key[:2])
    if tally is None:
        if len(into) > 10_000:
            into.clear()
        tally = into[key[:2]] = {}
    for metric, n in counts.items():
        tally[metric] = tally.get(metric, 0) + n


_UPSERTS: dict[str, Any] = {}


def _upsert(dialect: str) -> Any:
    """``INSERT … ON CONFLICT DO UPDATE`` adding the counts: one statement shape per dialect,
    so every batch reuses its compiled form."""
    found = _UPSERTS.get(dialect)
    if found is None:
        table = UsageRow.__table__  # type: ignore[attr-defined]
        maker = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = maker(table).values({c.name: bindparam(c.name) for c in table.columns})
        found = _UPSERTS[dialect] = stmt.on_conflict_do_update(
            index_elements=["workspace_id", "day", "store", "recipe"],
            set_={m: table.c[m] + stmt.excluded[m] for m in METRICS},
        )
    return found


_SCOPE: ContextVar[tuple[UsageMeter, Key] | None] = ContextVar("sous_usage_scope", default=None)


class metering:
    """Count what :func:`count_usage` is told inside for ``key`` (on the hot path: a plain
    context manager, cheaper than a generator)."""

    __slots__ = ("_scope", "_token")

    def __init__(self, meter: UsageMeter, key: Key) -> None:
        self._scope = (meter, key)

    def __enter__(self) -> None:
        self._token = _SCOPE.set(self._scope)

    def __exit__(self, *_: object) -> None:
        _SCOPE.reset(self._token)


def count_usage(metric: str, n: int = 1) -> None:
    """Count ``n`` of ``metric`` for the run in hand (nothing outside a run's step)."""
    scope = _SCOPE.get()
    if scope is not None:
        scope[0].add(scope[1], metric, n)


def count_sent(
    meter: UsageMeter, metric: str, workspace: str, store: str | None, now: datetime
) -> None:
    """Count one ``metric`` actually sent for ``workspace`` (and ``store``), inside a step of
    that workspace or not: a store's request made by the BigCommerce normaliser, a catch-up
    poll or a report counts for the workspace and store alone; made by a step, for its recipe
    too (and the run's store when ``store`` is ``None``)."""
    scope = _SCOPE.get()
    recipe = ""
    if scope is not None and scope[1][0] == workspace:
        store, recipe = store or scope[1][2], scope[1][3]
    meter.add(usage_key(workspace, now, store, recipe), metric)


def usage_key(workspace: str, day: Any, store: str | None, recipe: str | None) -> Key:
    """The key of a workspace's usage on ``day`` (a date, a datetime or ISO text)."""
    text = day.date().isoformat() if isinstance(day, datetime) else str(day)[:10]
    return (workspace, text, store or "", recipe or "")


LABELS = {
    "runs": "runs",
    "steps": "steps",
    "store_requests": "store requests",
    "emails": "e-mails",
    "http_calls": "HTTP calls",
}


class UsageLimits:
    """A workspace's daily limits (``Workspace.limits``), checked before work is done.

    What a workspace used today is read from the database at most every ``ttl`` seconds; what
    this process counted since is added from its meter. Other processes' work shows when the
    database is read again: across processes a limit holds to within those few seconds."""

    def __init__(self, db: Any, clock: Any, ttl: float = 5.0) -> None:
        self._db = db
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, dict[str, int], dict[str, int]]] = {}

    def _state(self, workspace: str, day: str) -> tuple[dict[str, int], dict[str, int]]:
        """The limits, and the usage read from the database less what this process had counted
        by then (so that adding everything it counted gives today's usage)."""
        now = self._clock.monotonic()
        hit = self._cache.get((workspace, day))
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        before = self._db.usage.written(workspace, day)
        from sqlalchemy import func, select

        from engine.store.models import Workspace

        table = UsageRow.__table__  # type: ignore[attr-defined]
        with self._db.reader.connect() as conn:
            found = conn.execute(
                select(Workspace.__table__.c.limits).where(  # type: ignore[attr-defined]
                    Workspace.__table__.c.id == workspace  # type: ignore[attr-defined]
                )
            ).scalar()
            limits = {k: int(v) for k, v in (found or {}).items() if v is not None}
            used: dict[str, int] = {}
            if limits:
                sums = [func.coalesce(func.sum(table.c[m]), 0) for m in METRICS]
                row = conn.execute(
                    select(*sums).where(table.c.workspace_id == workspace, table.c.day == day)
                ).one()
                used = {m: int(v) - before.get(m, 0) for m, v in zip(METRICS, row, strict=True)}
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[(workspace, day)] = (now + self._ttl, limits, used)
        return limits, used

    def reached(
        self, workspace: str, day: str, metrics: tuple[str, ...], started: tuple[str, ...] = ()
    ) -> str | None:
        """Why ``workspace`` may do no more of ``metrics`` today (``None``: it may); for the
        metrics in ``started`` the work in hand is counted already."""
        limits, used = self._state(workspace, day)
        if not limits:
            return None
        counted = self._db.usage.seen(workspace, day)
        for metric in metrics:
            cap = limits.get(metric)
            done = used.get(metric, 0) + counted.get(metric, 0) - (metric in started)
            if cap is not None and done >= cap:
                return (
                    f"usage limit reached: workspace {workspace!r} may use {cap} "
                    f"{LABELS[metric]} a day and has used them today ({day}, UTC); "
                    f"raise the limit (PATCH /v1/workspaces/{workspace} with limits.{metric}, "
                    "an agency key) or wait until tomorrow"
                )
        return None
