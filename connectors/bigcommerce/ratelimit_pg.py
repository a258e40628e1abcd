"""One request budget per BigCommerce store, shared by every process through PostgreSQL.

:class:`PostgresQuotaBudget` implements :class:`~connectors.bigcommerce.ratelimit.QuotaBudget`
with the same policy as :class:`~connectors.bigcommerce.ratelimit.MemoryQuotaBudget` (reserve,
probing, pause after a 429, back-off), but keeps each store's state in the row
``sous_quota_budget`` and each request in flight as a row of ``sous_quota_lease``. Every
decision is taken in one transaction holding the store's row lock (``SELECT … FOR UPDATE``), so
workers on any number of machines never spend the same unit of quota twice: a request is sent
only while ``left - in_flight > reserve``, where ``in_flight`` counts the leases of every
process.

* A lease expires after ``lease_ttl`` seconds, so a process that dies mid-request gives its
  capacity back.
* Times are seconds since the epoch on the budget's clock (``clock.now()``), so processes agree
  on window resets as far as their clocks agree (NTP keeps that to milliseconds; windows are 30 s).
* ``observe`` never blocks: it schedules the write and returns; the lease is counted until the
  write lands, which only makes the budget more careful.
* Waiting callers are not served in arrival order across processes; within a process they are
  (one caller per store asks the database at a time, so waiting callers do not each poll it). A
  caller waits on the clock for a window reset or a pause, and polls every ``poll`` seconds
  (doubling up to 0.25 s) while the store has too many requests in flight.
* The tables are created by ``sous migrate`` (:func:`install_tables`) when the database is
  PostgreSQL, and again (idempotently) by the first connection of a process.
* :meth:`PostgresQuotaBudget.snapshot` tells the state as this process last read it (every
  decision reads it), for health pages; it does not query the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Engine

from connectors.bigcommerce.ratelimit import (
    H_LEFT,
    H_RESET_MS,
    H_RETRY_AFTER,
    BudgetConfig,
    MemoryQuotaBudget,
    QuotaSnapshot,
    _number,
    _Store,
)
from engine import Clock, SystemClock

TABLES = (
    """CREATE TABLE IF NOT EXISTS sous_quota_budget (
        store_hash text PRIMARY KEY, quota int, "left" int, "window" float8, reset_at float8,
        metered boolean, paused_until float8 NOT NULL DEFAULT 0,
        consecutive_429 int NOT NULL DEFAULT 0, requests bigint NOT NULL DEFAULT 0,
        rate_limited bigint NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS sous_quota_lease (
        id bigserial PRIMARY KEY, store_hash text NOT NULL, owner text NOT NULL,
        expires_at float8 NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS sous_quota_lease_store ON sous_quota_lease (store_hash, owner)",
)
_STATE = (
    "quota",
    "left",
    "window",
    "reset_at",
    "metered",
    "paused_until",
    "consecutive_429",
    "requests",
    "rate_limited",
)
_SELECT = """
SELECT quota, "left", "window", reset_at, metered, paused_until, consecutive_429, requests,
       rate_limited,
       (SELECT count(*) FROM sous_quota_lease AS l
        WHERE l.store_hash = b.store_hash AND l.expires_at >= %s)
FROM sous_quota_budget AS b WHERE store_hash = %s FOR UPDATE OF b"""
_UPDATE = """
UPDATE sous_quota_budget SET (quota, "left", "window", reset_at, metered, paused_until,
                              consecutive_429, requests, rate_limited)
    = (%s, %s, %s, %s, %s, %s, %s, %s, %s)
WHERE store_hash = %s"""
_LEASE = "INSERT INTO sous_quota_lease (store_hash, owner, expires_at) VALUES (%s, %s, %s)"


def install_tables(engine: Engine) -> None:
    """Create the shared budget's tables (for ``sous migrate``); safe to run again, and from
    several processes at once."""
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("SELECT pg_advisory_xact_lock(hashtext('sous:quota'))")
        for statement in TABLES:
            raw.execute(statement)


class _EpochClock:
    """The budget's clock with ``monotonic()`` as epoch seconds, for the shared policy."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def now(self) -> datetime:
        return self.clock.now()

    def monotonic(self) -> float:
        return self.clock.now().timestamp()

    async def sleep(self, seconds: float) -> None:
        await self.clock.sleep(seconds)


class PostgresQuotaBudget:
    """A :class:`QuotaBudget` whose state every process shares through PostgreSQL."""

    def __init__(
        self,
        conninfo: str,
        clock: Clock | None = None,
        config: BudgetConfig | None = None,
        *,
        lease_ttl: float = 120.0,
        poll: float = 0.02,
    ) -> None:
        self._conninfo = conninfo.replace("postgresql+psycopg://", "postgresql://", 1)
        self._clock: Clock = clock or SystemClock()
        self._policy = MemoryQuotaBudget(_EpochClock(self._clock), config)
        self.config = self._policy.config
        self.owner = uuid.uuid4().hex
        self.lease_ttl = lease_ttl
        self.poll = poll
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock: asyncio.Lock | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._seen: dict[str, _Store] = {}
        self._waiting: dict[str, int] = {}
        self._gates: dict[str, asyncio.Lock] = {}

    # -- protocol -------------------------------------------------------------------------
    async def acquire(self, store_hash: str) -> None:
        poll = self.poll
        self._waiting[store_hash] = self._waiting.get(store_hash, 0) + 1
        gate = self._gates.setdefault(store_hash, asyncio.Lock())
        try:
            async with gate:  # one caller of this process asks at a time, first come first
                while True:
                    delay = await self._try(store_hash)
                    if delay == 0.0:
                        return
                    if delay is None:  # too many in flight: wait for any process's answer
                        await asyncio.sleep(poll)
                        poll = min(poll * 2, 0.25)
                    else:
                        await self._clock.sleep(delay)
        finally:
            self._waiting[store_hash] -= 1

    def observe(self, store_hash: str, headers: Mapping[str, str], status: int | None) -> None:
        h = {k.lower(): v for k, v in headers.items()}
        task = asyncio.get_running_loop().create_task(self._observe(store_hash, h, status))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def snapshot(self, store_hash: str) -> QuotaSnapshot:
        """The store's shared state as this process last read it (``in_flight`` counts every
        process's requests then; ``queued`` is this process's callers waiting now)."""
        st = self._seen.get(store_hash) or _Store()
        now = self._clock.now().timestamp()
        return QuotaSnapshot(
            quota=st.quota,
            left=st.left,
            in_flight=st.in_flight,
            queued=self._waiting.get(store_hash, 0),
            reset_in=None if st.reset_at is None else max(0.0, st.reset_at - now),
            paused_for=max(0.0, st.paused_until - now),
            consecutive_429=st.consecutive_429,
            requests=st.requests,
            rate_limited=st.rate_limited,
        )

    # -- lifecycle ------------------------------------------------------------------------
    async def flush(self) -> None:
        """Wait until every observation made so far is written."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def aclose(self) -> None:
        await self.flush()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    # -- internals ------------------------------------------------------------------------
    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            try:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('sous:quota'))")
                    for statement in TABLES:
                        await conn.execute(statement)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def _locked(
        self, conn: psycopg.AsyncConnection[Any], store_hash: str, now: float
    ) -> _Store:
        """The store's state, its row locked until the transaction ends (created if new)."""
        cur = await conn.execute(_SELECT, (now, store_hash))
        row = await cur.fetchone()
        if row is None:
            await conn.execute(
                "INSERT INTO sous_quota_budget (store_hash) VALUES (%s) ON CONFLICT DO NOTHING",
                (store_hash,),
            )
            cur = await conn.execute(_SELECT, (now, store_hash))
            row = await cur.fetchone()
            assert row is not None
        st = _Store(**dict(zip(_STATE, row[:-1], strict=True)))
        st.in_flight = int(row[-1])
        return st

    async def _save(self, conn: psycopg.AsyncConnection[Any], store_hash: str, st: _Store) -> None:
        await conn.execute(_UPDATE, (*(getattr(st, c) for c in _STATE), store_hash))

    @contextlib.asynccontextmanager
    async def _state(self, store_hash: str) -> AsyncIterator[tuple[Any, _Store, float]]:
        """The store's shared state, row-locked in a transaction, saved when the block ends."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            conn = await self._connection()
            async with conn.transaction():
                now = self._clock.now().timestamp()
                st = await self._locked(conn, store_hash, now)
                yield conn, st, now
                await self._save(conn, store_hash, st)
            self._seen[store_hash] = st

    async def _try(self, store_hash: str) -> float | None:
        """One decision: 0 (a lease was taken), seconds to wait, or ``None`` (poll)."""
        async with self._state(store_hash) as (conn, st, now):
            delay = self._policy._delay(st)
            if delay == 0.0:
                st.requests += 1
                await conn.execute(_LEASE, (store_hash, self.owner, now + self.lease_ttl))
        return delay

    async def _observe(self, store_hash: str, h: dict[str, str], status: int | None) -> None:
        async with self._state(store_hash) as (conn, st, now):
            # This process's oldest lease of the store, and any expired one of anybody's.
            await conn.execute(
                "DELETE FROM sous_quota_lease WHERE store_hash = %s AND (expires_at < %s OR"
                " id = (SELECT min(id) FROM sous_quota_lease WHERE store_hash = %s"
                " AND owner = %s))",
                (store_hash, now, store_hash, self.owner),
            )
            if status is not None:
                self._learn(st, now, h, status)

    def _learn(self, st: _Store, now: float, h: dict[str, str], status: int) -> None:
        """What :meth:`MemoryQuotaBudget.observe` does with a response, on the shared state."""
        left, reset_ms = _number(h, H_LEFT), _number(h, H_RESET_MS)
        if left is not None:
            self._policy._learn(st, now, h, int(left), reset_ms)
        elif st.metered is None and status != 429:
            st.metered = False
        if status == 429:
            wait = reset_ms / 1000 if reset_ms is not None else _number(h, H_RETRY_AFTER)
            self._policy._on_429(st, now, wait)
        else:
            st.consecutive_429 = 0


assert set(_STATE) <= {f.name for f in fields(_Store)}
