"""Database access: one SQLAlchemy engine, and a group-committing writer for the hot path.

SQLite (the embedded default) runs in WAL mode with ``synchronous=NORMAL``; PostgreSQL uses the
same tables. Engine writes go through :class:`Writer`, which gathers the writes that arrive while
a transaction is in flight and commits them together: each caller's function runs in its own
SAVEPOINT (so one failure rolls back only that caller's work) and each caller's ``await`` returns
only after the commit, so "stored before acknowledged" holds for every one of them.

Reads never take the write lock. On SQLite they go through a second engine whose transactions
begin deferred and whose connections are ``query_only``: in WAL mode a reader sees the last
committed snapshot and never waits for the writer, nor makes it wait. Write transactions begin
``IMMEDIATE`` (two writers never deadlock upgrading a read to a write); the busy timeout is only
the last resort for another process's short write (the CLI), never how readers and the engine
share the file. On PostgreSQL reads take no locks that writes wait for, and a read from the event
loop awaits its statements on an asyncio connection (:meth:`Database.read`, :meth:`Database.query`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel

from engine.store.bulk import Ops
from engine.store.usage import Key, UsageMeter

T = TypeVar("T")
log = logging.getLogger("sous.engine")


BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite write waits for another process's write lock before it fails."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let SQLAlchemy emit BEGIN, so SAVEPOINTs work
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_read_only(dbapi_conn: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_conn, record)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA query_only=ON")  # a write through a reader is a bug: fail loudly
    cur.close()


def is_memory(url: str) -> bool:
    return url in ("sqlite://", "sqlite:///:memory:")


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """The engine for ``url``. On SQLite, writers begin ``IMMEDIATE`` and readers (``read_only``)
    begin deferred on ``query_only`` connections; on PostgreSQL readers have a pool of their own
    whose every statement is a read-only transaction of its own."""
    if url.startswith("sqlite"):
        memory = is_memory(url)
        if not memory:
            path = url.split("///", 1)[-1]
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Room for every thread of the API's thread pool (40) and the event loop at once: a
        # checkout that waited for a connection on the loop would stall every task behind it,
        # including the requests that would give one back. SQLite connections are cheap.
        pool = {"poolclass": StaticPool} if memory else {"pool_size": 48, "max_overflow": 16}
        engine = create_engine(url, connect_args={"check_same_thread": False}, **pool)
        event.listen(engine, "connect", _sqlite_read_only if read_only else _sqlite_pragmas)
        # IMMEDIATE: take the write lock up front, so two connections never deadlock upgrading
        # a read transaction to a write one (SQLite would answer "database is locked" at once).
        # A reader's deferred BEGIN takes no lock: WAL gives it a snapshot.
        begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin))
        return engine
    if read_only:
        return create_engine(url, **_PG_READER)
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


_PG_READER: dict[str, Any] = {
    "pool_size": 5,
    "max_overflow": 5,
    "isolation_level": "AUTOCOMMIT",
    "connect_args": {"options": "-c default_transaction_read_only=on"},
}
"""PostgreSQL readers have pools of their own, so a dashboard never waits for a connection the
engine's writers hold; small, since every process has them and they share the server's
max_connections. Each statement is a read-only transaction of its own (autocommit, with the
session's default_transaction_read_only: no transaction id, no write by mistake): under READ
COMMITTED a statement sees its own snapshot inside a transaction too, and a read costs one round
trip instead of four (a liveness ping, BEGIN, the query, ROLLBACK). A connection the server
dropped fails one read, which is made again on a new one (see :func:`_once_more`)."""


class Tx:
    """The transaction a write function runs in, and what to do once it has committed.

    ``conn`` executes statements at once. :meth:`insert`, :meth:`update` and :meth:`delete`
    are buffered and sent with the rest of the batch as one ``executemany`` per statement shape
    (see :mod:`engine.store.bulk`): use them for rows nothing else in the batch reads or changes.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._after: list[Callable[[], None]] = []
        self._ops: list[Callable[[Ops], None]] = []
        self._counts: list[tuple[Key, str, int]] = []

    def count(self, key: Key, metric: str, n: int = 1) -> None:
        """Count usage (:mod:`engine.store.usage`) if this function's writes commit: in the
        engine's writer it is written with the batch, and counted once however often the
        function runs (a batch run again in savepoints runs it twice)."""
        self._counts.append((key, metric, n))

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
        # An in-memory database lives in its one connection: readers share it.
        separate = not is_memory(url)
        self.reader: Engine = make_engine(url, read_only=True) if separate else self.engine
        self.usage = UsageMeter()
        self.writer: Writer = Writer(self)
        self._looped: tuple[asyncio.AbstractEventLoop, AsyncEngine] | None = None

    def session(self) -> Session:
        """A session that writes (its transaction holds the write lock on SQLite: keep it short,
        and never across an ``await``)."""
        return Session(self.engine, expire_on_commit=False)

    def read_session(self) -> Session:
        """A session that only reads: it never holds the write lock, nor waits for it."""
        return Session(self.reader, expire_on_commit=False)

    def create_all(self) -> None:
        """Create every table directly (tests); deployments use :func:`sous.migrate`."""
        import engine.store.audit
        import engine.store.models
        import engine.store.schedule_models
        import engine.store.usage  # noqa: F401  (each registers its tables)

        SQLModel.metadata.create_all(self.engine)

    # A read from the event loop runs inline on SQLite, where a snapshot read takes
    # microseconds and waits for no lock (a thread would wait for the GIL behind a busy loop).
    # On a database server its round trips must not stall the loop: ``fn`` runs on the loop
    # all the same (SQLAlchemy's run_sync), but its statements are awaited on an asyncio
    # connection, so other tasks go on meanwhile. A read in a thread would wait for the GIL
    # behind the busy loop again after each round trip, and hop threads twice.

    async def read(self, fn: Callable[[Tx], T]) -> T:
        """:meth:`read_sync` from the event loop (see above)."""
        if self.is_sqlite:
            return self.read_sync(fn)

        async def work() -> T:
            async with self._async_reader().connect() as conn:
                return await conn.run_sync(lambda sync: _read_on(sync, fn))

        return await _once_more_async(work)

    async def query(self, fn: Callable[[Session], T]) -> T:
        """``fn`` with a read-only ORM session, from the event loop (see above)."""
        if self.is_sqlite:
            return self._query(fn)

        async def work() -> T:
            reader = self._async_reader()
            # SQLModel's session class, as read_session's
            async with AsyncSession(
                reader, sync_session_class=Session, expire_on_commit=False
            ) as session:
                return await session.run_sync(lambda sync: fn(cast(Session, sync)))

        return await _once_more_async(work)

    def _async_reader(self) -> AsyncEngine:
        """The read pool of the running event loop (an asyncio connection belongs to one)."""
        loop = asyncio.get_running_loop()
        if self._looped is None or self._looped[0] is not loop:
            self._looped = (loop, create_async_engine(self.url, **_PG_READER))
        return self._looped[1]

    def _query(self, fn: Callable[[Session], T]) -> T:
        def work() -> T:
            with self.read_session() as session:
                return fn(session)

        return _once_more(work)

    def read_sync(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in a read-only transaction, now, on this thread."""

        def work() -> T:
            with self.reader.connect() as conn:
                return _read_on(conn, fn)

        return _once_more(work)

    def run_sync(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in its own write transaction, now, on this thread (set-up, tests and
        other processes' tools; the running engine writes through :attr:`writer`)."""
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
        self.reader.dispose()
        if self._looped is not None:  # its connections belong to their loop: let go, not closed
            self._looped[1].sync_engine.dispose(close=False)
            self._looped = None

    async def aclose(self) -> None:
        """:meth:`dispose`, closing the event loop's read connections first."""
        if self._looped is not None and self._looped[0] is asyncio.get_running_loop():
            await self._looped[1].dispose()
            self._looped = None
        self.dispose()


def _read_on(conn: Connection, fn: Callable[[Tx], T]) -> T:
    with conn.begin():
        tx = Tx(conn)
        result = fn(tx)
    if tx._ops or tx._after:
        raise RuntimeError("a read asked for writes: use Database.writer")
    return result


def _once_more(read: Callable[[], T]) -> T:
    """``read``, made again once if the database had dropped the connection it used (a
    restarted server): the pool then replaces every connection older than that one."""
    try:
        return read()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.info("a read's database connection was gone; reading again on a new one")
        return read()


async def _once_more_async(read: Callable[[], Awaitable[T]]) -> T:
    """:func:`_once_more` for a read on the event loop."""
    try:
        return await read()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.info("a read's database connection was gone; reading again on a new one")
        return await read()


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
        usage = self._db.usage
        counted: dict[Any, dict[str, int]] = {}
        try:
            with self._db.engine.begin() as conn:
                counts = self._run_fns(batch, isolate, conn, ops, results, after)
                for key, metric, n in counts:
                    usage.add(key, metric, n)
                counted = usage.write(conn)  # what was counted since the last batch, and now
        except BaseException:
            usage.put_back(counted)
            raise
        usage.committed(counted)
        return results, after

    def _run_fns(
        self,
        batch: list[tuple[Callable[[Tx], Any], asyncio.Future[Any]]],
        isolate: bool,
        conn: Connection,
        ops: Ops,
        results: list[tuple[bool, Any]],
        after: list[Callable[[], None]],
    ) -> list[tuple[Key, str, int]]:
        """Run each function of the batch; the usage counted by those whose work stands."""
        counts: list[tuple[Key, str, int]] = []
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
            counts += tx._counts
        if not isolate:
            try:
                ops.flush(conn)
            except Exception as exc:  # the deferred writes of one function broke the batch
                raise _BatchFailed from exc
        return counts

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def transient(exc: BaseException) -> bool:
    """A fault that passes: a locked file, a lost or restarted connection, a serialisation
    conflict. Writing again later can succeed; anything else is a bug or bad data."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):  # SQLite also says "no such table" so
        return any(word in str(exc.orig).lower() for word in ("locked", "busy"))
    return True  # a server's OperationalError: the connection, a serialisation conflict


async def write_until_done(
    writer: Writer,
    fn: Callable[[Tx], T],
    sleep: Callable[[float], Awaitable[None]],
    what: str,
    *,
    first: float = 0.05,
    longest: float = 5.0,
) -> T:
    """``writer.write(fn)``, written again after a transient fault with a growing delay
    (``first`` doubling up to ``longest`` seconds) until it commits. A job's completion, put-back
    or trace must outlast a passing fault: dropping it would park the job until a restart.
    ``fn`` must be safe to run again (its transaction rolled back)."""
    delay = first
    while True:
        try:
            return await writer.write(fn)
        except Exception as exc:
            if not transient(exc):
                raise
            log.warning("%s failed (%s); writing it again in %.2fs", what, exc, delay)
        await sleep(delay)
        delay = min(longest, delay * 2)
