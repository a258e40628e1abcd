"""Tables of the BigCommerce connector, and the two small stores built on them.

* ``bc_hook``: the webhooks Sous registered on each store (one row per scope).
* ``bc_snapshot``: the last stock level (products, variants) or status (orders) Sous saw, so a
  transition such as *out of stock* fires once, on the change, not on every later update; and
  the watched fields last seen (``fields``), so an update carries the previous values.
* ``bc_write``: a short-lived log of Sous's own writes (which run changed which resource), so a
  webhook caused by a recipe's write is attributed to that run and loops can be stopped.
* ``bc_sync``: per store, the cursors of the catch-up poll and the time of the last reconcile.

Schema changes go through Alembic like the engine's tables; tests call ``create_all`` after
importing this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, and_, delete, or_, select, text
from sqlmodel import Field, SQLModel

from engine import Clock, Database, RetryableError, Tx, new_id

log = logging.getLogger("sous.bigcommerce")


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index)
    )


def _json() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


class BcHookRow(SQLModel, table=True):
    """A webhook registered on a store for one scope (``hook_id`` is BigCommerce's id)."""

    __tablename__ = "bc_hook"
    store_id: str = Field(primary_key=True, max_length=40)
    scope: str = Field(primary_key=True, max_length=120)
    hook_id: int
    destination: str = Field(max_length=500)
    is_active: bool = True
    updated_at: datetime = _ts()


class BcSnapshotRow(SQLModel, table=True):
    """The last known state of a product or variant (stock) or order (status)."""

    __tablename__ = "bc_snapshot"
    store_id: str = Field(primary_key=True, max_length=40)
    kind: str = Field(primary_key=True, max_length=20)
    ref: int = Field(primary_key=True)
    parent: int | None = None
    level: int | None = None
    warning_level: int | None = None
    tracked: bool = False
    status_id: int | None = None
    stamp: str | None = Field(default=None, max_length=64)
    fields: dict[str, Any] | None = _json()
    """The watched fields last seen (``changes.py``), for the previous values on updates."""
    read_at: datetime | None = _ts(nullable=True)
    """When the read this product's level came from started: a read started earlier is older
    than this snapshot, whichever process made it."""
    updated_at: datetime = _ts()


class BcWriteRow(SQLModel, table=True):
    """One write Sous made to a store: which run, which resource, which fields."""

    __tablename__ = "bc_write"
    __table_args__ = (Index("ix_bc_write_resource", "store_id", "kind", "ref"),)
    id: str = Field(primary_key=True, max_length=40)
    store_id: str = Field(max_length=40)
    kind: str = Field(max_length=20)
    ref: int
    fields: list[str] | None = _json()
    run_id: str = Field(max_length=40)
    recipe_uid: str = Field(max_length=40)
    depth: int = 0
    chain: list[str] | None = _json()
    idempotency_key: str = Field(max_length=200, index=True)
    status: str = Field(default="pending", max_length=20)
    detail: dict[str, Any] | None = _json()
    created_at: datetime = _ts(index=True)


class BcSyncRow(SQLModel, table=True):
    """Per store: catch-up cursors (BigCommerce's ``date_modified``) and reconcile status."""

    __tablename__ = "bc_sync"
    store_id: str = Field(primary_key=True, max_length=40)
    products_since: datetime | None = _ts(nullable=True)
    orders_since: datetime | None = _ts(nullable=True)
    last_reconcile_at: datetime | None = _ts(nullable=True)
    last_error: str | None = Field(default=None, max_length=2000)


TABLES = (BcHookRow, BcSnapshotRow, BcWriteRow, BcSyncRow)
HOOKS = BcHookRow.__table__  # type: ignore[attr-defined]
SNAPSHOTS = BcSnapshotRow.__table__  # type: ignore[attr-defined]
WRITES = BcWriteRow.__table__  # type: ignore[attr-defined]
SYNC = BcSyncRow.__table__  # type: ignore[attr-defined]


# -- snapshots ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    level: int | None = None
    warning_level: int | None = None
    tracked: bool = False
    status_id: int | None = None
    stamp: str | None = None
    parent: int | None = None
    fields: dict[str, Any] | None = None
    read_at: datetime | None = None


def _snapshot(row: Any) -> Snapshot:
    read_at = row.read_at
    if read_at is not None and read_at.tzinfo is None:  # SQLite returns times without a zone
        read_at = read_at.replace(tzinfo=UTC)
    return Snapshot(
        row.level, row.warning_level, row.tracked, row.status_id, row.stamp, row.parent,
        row.fields, read_at,
    )  # fmt: skip


def _same(a: Snapshot | None, b: Snapshot | None) -> bool:
    """Whether two snapshots say the same (the fields as JSON stores them)."""
    if a is None or b is None:
        return a is b
    plain = json.loads(json.dumps(a.fields)) == json.loads(json.dumps(b.fields))
    return plain and replace(a, fields=None) == replace(b, fields=None)


class SnapshotConflict(RetryableError):
    """Another process changed snapshots this derivation read: derive again from theirs."""

    def __init__(self, keys: Iterable[SnapKey]) -> None:
        self.keys = tuple(keys)
        super().__init__(f"snapshots changed by another process: {self.keys[:3]}")


_BASIS: contextvars.ContextVar[dict[SnapKey, Snapshot | None] | None] = contextvars.ContextVar(
    "snapshot_basis", default=None
)
_TRY_LOCKS = text(
    "SELECT bool_and(pg_try_advisory_xact_lock(hashtextextended(k, 0)))"
    " FROM unnest(CAST(:keys AS text[])) AS k"
)
_WAIT_LOCKS = text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))"
    " FROM unnest(CAST(:keys AS text[])) AS k"
)


SnapKey = tuple[str, str, int]
"""``(store_id, kind, ref)``."""


def _select_one(tx: Tx, key: SnapKey) -> Any:
    store_id, kind, ref = key
    return tx.conn.execute(
        select(SNAPSHOTS).where(
            SNAPSHOTS.c.store_id == store_id, SNAPSHOTS.c.kind == kind, SNAPSHOTS.c.ref == ref
        )
    ).first()


def _lock_names(keys: Iterable[SnapKey]) -> list[str]:
    return [f"bc_snapshot:{s}:{k}:{r}" for s, k, r in keys]


class Snapshots:
    """Snapshot rows with an in-memory cache. Reads hit the database once per key; writes are
    made by the caller inside its own transaction (:meth:`save`), then :meth:`remember`ed.

    Several processes may derive events from one store's snapshots (distributed mode), so on a
    database server the cache is only a hint: the snapshots a derivation read (its
    :meth:`basis`) are checked in the transaction that stores what it derived
    (:meth:`verify`), and :class:`SnapshotConflict` sends it back to derive again."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._cache: dict[SnapKey, Snapshot | None] = {}

    @contextlib.contextmanager
    def basis(self) -> Iterator[dict[SnapKey, Snapshot | None]]:
        """Record the snapshots :meth:`get` returns inside the block (in this task)."""
        read: dict[SnapKey, Snapshot | None] = {}
        token = _BASIS.set(read)
        try:
            yield read
        finally:
            _BASIS.reset(token)

    def read(self) -> dict[SnapKey, Snapshot | None]:
        """The snapshots read so far inside this task's :meth:`basis` (empty outside one)."""
        return dict(_BASIS.get() or {})

    def get(self, key: SnapKey) -> Snapshot | None:
        found = self._get(key)
        read = _BASIS.get()
        if read is not None:
            read.setdefault(key, found)
        return found

    def verify(self, tx: Tx, basis: dict[SnapKey, Snapshot | None]) -> None:
        """Inside the transaction that saves what was derived from ``basis``: lock its keys
        (without waiting: a process holding one is committing) and check the rows still say
        what ``basis`` says; raise :class:`SnapshotConflict` otherwise. Nothing to check on
        SQLite, where one process writes."""
        if self._db.is_sqlite or not basis:
            return
        keys = sorted(basis)
        if not tx.conn.execute(_TRY_LOCKS, {"keys": _lock_names(keys)}).scalar():
            raise SnapshotConflict(keys)
        which = or_(
            *(
                and_(SNAPSHOTS.c.store_id == s, SNAPSHOTS.c.kind == k, SNAPSHOTS.c.ref == r)
                for s, k, r in keys
            )
        )
        rows = {(r.store_id, r.kind, r.ref): _snapshot(r) for r in tx.conn.execute(
            select(SNAPSHOTS).where(which)
        )}  # fmt: skip
        if not all(_same(rows.get(key), snap) for key, snap in basis.items()):
            raise SnapshotConflict(keys)

    async def settled(self, keys: Iterable[SnapKey], timeout: float = 5.0) -> None:
        """Wait (at most ``timeout`` seconds) until no transaction holds the locks of ``keys``:
        after a conflict, the process that holds them is committing, and deriving again before
        it has committed would only find its lock again."""
        if self._db.is_sqlite:
            return
        names = _lock_names(sorted(set(keys)))

        def wait(tx: Tx) -> None:
            tx.conn.execute(text(f"SET LOCAL lock_timeout = {int(timeout * 1000)}"))
            tx.conn.execute(_WAIT_LOCKS, {"keys": names})

        with contextlib.suppress(Exception):  # a lock still held: the next check says so
            await self._db.read(wait)

    async def refresh(self, store_id: str, product: int, kinds: Sequence[str]) -> None:
        """Read a product's snapshots (``kinds`` keyed by the product's id, and its variants)
        from the database into the cache, in one query: on a database server other processes
        change them, and a derivation from a stale hint only ends in a conflict."""
        if self._db.is_sqlite:
            return
        own = and_(SNAPSHOTS.c.kind.in_(list(kinds)), SNAPSHOTS.c.ref == product)
        variants = and_(SNAPSHOTS.c.kind == "variant", SNAPSHOTS.c.parent == product)
        query = select(SNAPSHOTS).where(SNAPSHOTS.c.store_id == store_id, or_(own, variants))
        rows = await self._db.read(lambda tx: list(tx.conn.execute(query)))
        self._cache.update(dict.fromkeys(((store_id, kind, product) for kind in kinds), None))
        self._cache.update({(store_id, r.kind, r.ref): _snapshot(r) for r in rows})

    async def stored(self, key: SnapKey) -> Snapshot | None:
        """The snapshot as the database has it now (the cache is left alone)."""
        row = await self._db.read(lambda tx: _select_one(tx, key))
        return None if row is None else _snapshot(row)

    def _get(self, key: SnapKey) -> Snapshot | None:
        if key in self._cache:
            return self._cache[key]
        row = self._db.read_sync(lambda tx: _select_one(tx, key))
        found = None if row is None else _snapshot(row)
        self._cache[key] = found
        return found

    def load_store(self, store_id: str) -> int:
        """Read every snapshot of a store into the cache at once; return how many."""

        def read(tx: Tx) -> list[Any]:
            query = select(SNAPSHOTS).where(SNAPSHOTS.c.store_id == store_id)
            return list(tx.conn.execute(query).all())

        rows = self._db.read_sync(read)
        for r in rows:
            self._cache[(store_id, r.kind, r.ref)] = _snapshot(r)
        return len(rows)

    def known(self, key: SnapKey) -> bool:
        """Whether ``key`` is in the cache (present or known to be absent)."""
        return key in self._cache

    def remember(self, changes: dict[SnapKey, Snapshot | None]) -> None:
        self._cache.update(changes)

    def forget(self, keys: Iterable[SnapKey]) -> None:
        for key in keys:
            self._cache.pop(key, None)

    def save(self, tx: Tx, changes: dict[SnapKey, Snapshot | None]) -> None:
        """Upsert (or delete, for ``None``) snapshot rows inside ``tx``, buffered with the rest of
        the group commit (one resource's snapshots are only written under its lock)."""
        now = self._clock.now()
        rows = []
        for (store_id, kind, ref), snap in changes.items():
            key = {"store_id": store_id, "kind": kind, "ref": ref}
            if snap is None:
                tx.delete(SNAPSHOTS, key)
                if kind == "product":
                    tx.delete(SNAPSHOTS, {"store_id": store_id, "kind": "variant", "parent": ref})
                continue
            rows.append(
                {
                    **key,
                    "level": snap.level,
                    "warning_level": snap.warning_level,
                    "tracked": snap.tracked,
                    "status_id": snap.status_id,
                    "stamp": snap.stamp,
                    "parent": snap.parent,
                    "fields": snap.fields,
                    "read_at": snap.read_at,
                    "updated_at": now,
                }
            )
        if rows:
            tx.insert(SNAPSHOTS, rows, upsert=True)


class ResourceLocks:
    """One lock per resource (a snapshot is read and written under it), dropped when nobody
    holds or waits for it."""

    def __init__(self) -> None:
        self.locks: dict[Any, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Any) -> AsyncIterator[None]:
        lock, users = self.locks.get(key, (asyncio.Lock(), 0))
        self.locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self.locks[key]
            if users <= 1:
                del self.locks[key]
            else:
                self.locks[key] = (lock, users - 1)


# -- the write log ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteRecord:
    """A write made by a run. ``depth`` and ``chain`` are those of the event the run started
    from; an event the write causes is one deeper."""

    id: str
    store_id: str
    kind: str
    ref: int
    fields: tuple[str, ...]
    run_id: str
    recipe_uid: str
    depth: int
    chain: tuple[str, ...]
    idempotency_key: str
    at: datetime
    detail: dict[str, Any] | None = None


class WriteLog:
    """Sous's recent writes, in memory for the hot path and in ``bc_write`` for restarts and
    for the idempotency of writes that cannot be checked against the store's state. On a
    database server other processes write too (distributed mode), so a resource without a
    write in memory is looked up in ``bc_write``."""

    def __init__(self, db: Database, clock: Clock, window: float = 120.0) -> None:
        self._db = db
        self._clock = clock
        self.window = window
        self._recent: dict[tuple[str, str, int], list[tuple[int, WriteRecord]]] = {}
        self._seq = 0

    def load(self) -> int:
        """Read back the writes still inside the window (at start-up)."""
        since = self._clock.now() - timedelta(seconds=self.window)

        def read(tx: Tx) -> list[Any]:
            return list(tx.conn.execute(select(WRITES).where(WRITES.c.created_at >= since)).all())

        rows = sorted(self._db.read_sync(read), key=lambda r: (r.created_at, r.id))
        for row in rows:
            self._add(_record(row, since.tzinfo))
        return len(rows)

    def _add(self, record: WriteRecord) -> None:
        self._seq += 1  # the order writes were made in (times can tie)
        key = (record.store_id, record.kind, record.ref)
        self._recent.setdefault(key, []).append((self._seq, record))

    async def record(self, records: Sequence[WriteRecord]) -> None:
        """Persist and remember writes about to be made (before the request is sent, so a
        webhook that arrives before the response is still attributed)."""

        def write(tx: Tx) -> None:
            tx.insert(WRITES, [_row(r) for r in records])

        await self._db.writer.write(write)
        for record in records:
            self._add(record)

    def new(self, **fields: Any) -> WriteRecord:
        return WriteRecord(id=new_id("bcw"), at=self._clock.now(), **fields)

    async def mark(self, record_ids: Sequence[str], status: str, detail: dict[str, Any]) -> None:
        def write(tx: Tx) -> None:
            for record_id in record_ids:
                tx.update(WRITES, {"id": record_id}, {"status": status, "detail": detail})

        await self._db.writer.write(write)

    def find(self, store_id: str, kinds: Iterable[str], ref: int) -> WriteRecord | None:
        """The newest write inside the window to this resource under any of ``kinds``."""
        cutoff = self._clock.now() - timedelta(seconds=self.window)
        best: tuple[int, WriteRecord] | None = None
        for kind in kinds:
            key = (store_id, kind, ref)
            records = [(n, r) for n, r in self._recent.get(key, ()) if r.at >= cutoff]
            if records:
                self._recent[key] = records
                if best is None or records[-1][0] > best[0]:
                    best = records[-1]
            else:
                self._recent.pop(key, None)
        if best is None and not self._db.is_sqlite:
            return self._stored(store_id, kinds, ref, cutoff)
        return best[1] if best else None

    def _stored(
        self, store_id: str, kinds: Iterable[str], ref: int, cutoff: datetime
    ) -> WriteRecord | None:
        """The newest write inside the window in ``bc_write`` (made by any process)."""

        def read(tx: Tx) -> Any:
            return tx.conn.execute(
                select(WRITES)
                .where(
                    WRITES.c.store_id == store_id,
                    WRITES.c.kind.in_(list(kinds)),
                    WRITES.c.ref == ref,
                    WRITES.c.created_at >= cutoff,
                )
                .order_by(WRITES.c.created_at.desc())
            ).first()

        row = self._db.read_sync(read)
        return None if row is None else _record(row)

    def by_key(
        self, idempotency_key: str, kind: str, ref: int
    ) -> tuple[str, dict[str, Any]] | None:
        """``(status, detail)`` of a write made for this step to this resource, if any."""

        def read(tx: Tx) -> Any:
            return tx.conn.execute(
                select(WRITES.c.status, WRITES.c.detail)
                .where(
                    WRITES.c.idempotency_key == idempotency_key,
                    WRITES.c.kind == kind,
                    WRITES.c.ref == ref,
                )
                .order_by(WRITES.c.created_at.desc())
            ).first()

        row = self._db.read_sync(read)
        return None if row is None else (str(row.status), dict(row.detail or {}))

    async def prune(self) -> None:
        """Forget writes older than the window (keeping a day in the table for idempotency)."""
        now = self._clock.now()
        cutoff = now - timedelta(seconds=self.window)
        for key in list(self._recent):
            kept = [(n, r) for n, r in self._recent[key] if r.at >= cutoff]
            if kept:
                self._recent[key] = kept
            else:
                del self._recent[key]
        keep_rows = now - timedelta(days=1)

        def write(tx: Tx) -> None:
            tx.conn.execute(delete(WRITES).where(WRITES.c.created_at < keep_rows))

        await self._db.writer.write(write)


def _record(row: Any, tz: Any = UTC) -> WriteRecord:
    at = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=tz)
    return WriteRecord(
        row.id, row.store_id, row.kind, row.ref, tuple(row.fields or ()), row.run_id,
        row.recipe_uid, row.depth, tuple(row.chain or ()), row.idempotency_key, at, row.detail,
    )  # fmt: skip


def _row(record: WriteRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "store_id": record.store_id,
        "kind": record.kind,
        "ref": record.ref,
        "fields": list(record.fields),
        "run_id": record.run_id,
        "recipe_uid": record.recipe_uid,
        "depth": record.depth,
        "chain": list(record.chain),
        "idempotency_key": record.idempotency_key,
        "status": "pending",
        "detail": record.detail,
        "created_at": record.at,
    }
