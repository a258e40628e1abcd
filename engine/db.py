"""Database access: one SQLAlchemy engine, and a group-committing writer for the hot path.

SQLite (the embedded default) runs in WAL mode with ``synchronous=NORMAL``; PostgreSQL uses the
same tables. Engine writes go through :class:`Writer`, which gathers the writes that arrive while
a transaction is in flight and commits them together: each caller's function runs in its own
SAVEPOINT (so one failure rolls back only that caller's work) and each caller's ``await`` returns
only after the commit, so "stored before acknowledged" holds for every one of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel

from engine.bulk import Ops

T = TypeVar("T")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let SQLAlchemy emit BEGIN, so SAVEPOINTs work
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        if not memory:
            path = url.split("///", 1)[-1]
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False},
            poolclass=StaticPool if memory else None,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # IMMEDIATE: take the write lock up front, so two connections never deadlock upgrading
        # a read transaction to a write one (SQLite would answer "database is locked" at once).
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class Tx:
    """The transaction a write function runs in, and what to do once it has committed.

    ``conn`` executes statements at once. :meth:`insert`, :meth:`update` and :meth:`delete`
    are buffered and sent with the rest of the batch as one ``executemany`` per statement shape
    (see :mod:`engine.bulk`): use them for rows nothing else in the batch reads or changes.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._after: list[Callable[[], None]] = []
        self._ops: list[Callable[[Ops], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after.append(callback)

    def insert(self, table: Table, rows: list[dict[str, Any]], *, upsert: bool = False) -> None:
        self._ops.append(lambda ops: ops.insert(table, rows, upsert=upsert))

    def update(self, table: Table, where: dict[str, Any], values: dict[str, Any]) -> None:
        self._ops.append(lambda ops: ops.update(table, where, values))

    def delete(self, table: Table, where: dict[str, Any]) -> None:
        self._ops.append(lambda ops: ops.delete(table, where))


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        self.writer: Writer = Writer(self)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def create_all(self) -> None:
        """Create every table directly (tests); deployments use :func:`sous.migrate`."""
        import engine.models
        import engine.schedule_models  # noqa: F401  (both register their tables)

        SQLModel.metadata.create_all(self.engine)

    async def run(self, fn: Callable[[Tx], T]) -> T:
        """:meth:`run_sync` from the event loop: inline on SQLite, where a read takes
        microseconds and a thread hop would cost more; in a thread on a database server, whose
        round trip would otherwise stall every other task of the loop."""
        return self.run_sync(fn) if self.is_sqlite else await asyncio.to_thread(self.run_sync, fn)

    def run_sync(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in its own transaction, now, on this thread."""
        with self.engine.begin() as conn:
            tx = Tx(conn)
            result = fn(tx)
            ops = Ops()
            for op in tx._ops:
                op(ops)
            ops.flush(conn)
        for callback in tx._after:
            callback()
        return result

    def dispose(self) -> None:
        self.writer.close()
        self.engine.dispose()


class _BatchFailed(Exception):
    """One function of an unisolated batch failed: run the batch again, isolated."""


class Writer:
    """Group commit: many coroutines' writes, one transaction, each in its own savepoint."""

    def __init__(self, db: Database, max_batch: int = 512) -> None:
        self._db = db
        self._max_batch = max_batch
        self._pending: list[tuple[Callable[[Tx], Any], asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sous-writer")
        self._inline = db.is_sqlite
        self.commits = 0
        self.writes = 0

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in a transaction; return its result once that transaction has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0)  # let the writes of this loop iteration gather
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                if self._inline:
                    # SQLite commits take microseconds: a thread hop would cost more, and a
                    # writer thread would wait on the GIL behind the event loop at every call.
                    results, after = self._commit(batch)
                else:
                    results, after = await loop.run_in_executor(self._executor, self._commit, batch)
            except Exception as exc:  # the commit itself failed: every caller hears of it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for callback in after:
                callback()
            for (_, future), (ok, value) in zip(batch, results, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _commit(
        self, batch: list[tuple[Callable[[Tx], Any], asyncio.Future[Any]]]
    ) -> tuple[list[tuple[bool, Any]], list[Callable[[], None]]]:
        """Commit the batch in one transaction. The fast path runs every function directly;
        if any of them fails, the transaction is rolled back and the batch is run again with
        a SAVEPOINT around each function, so only the failing ones lose their work."""
        try:
            results, after = self._run_batch(batch, isolate=False)
        except _BatchFailed:
            results, after = self._run_batch(batch, isolate=True)
        self.commits += 1
        self.writes += len(batch)
        return results, after

    def _run_batch(
        self, batch: list[tuple[Callable[[Tx], Any], asyncio.Future[Any]]], isolate: bool
    ) -> tuple[list[tuple[bool, Any]], list[Callable[[], None]]]:
        results: list[tuple[bool, Any]] = []
        after: list[Callable[[], None]] = []
        ops = Ops()
        with self._db.engine.begin() as conn:
            for fn, _ in batch:
                tx = Tx(conn)
                if not isolate:
                    try:
                        results.append((True, fn(tx)))
                    except Exception as exc:
                        raise _BatchFailed from exc
                    for op in tx._ops:
                        op(ops)
                else:
                    # Each function's deferred writes are flushed inside its own savepoint, so
                    # one that breaks a constraint fails alone.
                    savepoint = conn.begin_nested()
                    try:
                        value = fn(tx)
                        own = Ops()
                        for op in tx._ops:
                            op(own)
                        own.flush(conn)
                        savepoint.commit()
                    except Exception as exc:
                        savepoint.rollback()
                        results.append((False, exc))
                        continue
                    results.append((True, value))
                after += tx._after
            if not isolate:
                try:
                    ops.flush(conn)
                except Exception as exc:  # the deferred writes of one function broke the batch
                    raise _BatchFailed from exc
        return results, after

    def close(self) -> None:
        self._executor.shutdown(wait=True)
