"""Which process does the periodic work when many share one database.

Reconciling stores with their webhooks, polling sources, checking backorder dates, firing
schedules from ``sous serve`` and cleaning up old runs are each worth doing once, not once per
process: done by every replica and worker they spend the store's API quota many times over.
:class:`Leadership` elects one process: the one holding a PostgreSQL session-level advisory lock
on a connection of its own. If that process dies, its connection closes, the lock is released,
and the next process that asks takes over. With SQLite (one process) this process always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from engine.clock import Clock
from engine.store.db import Database

log = logging.getLogger("sous.engine")


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Leadership:
    """``await leadership.lead()``: True while this process is the one doing periodic work."""

    def __init__(self, db: Database, name: str = "sous:periodic-work") -> None:
        self._db = db
        self._key = _lock_key(name)
        self._conn: Connection | None = None
        self._held = db.is_sqlite

    @property
    def held(self) -> bool:
        """Whether this process led when last asked."""
        return self._held

    async def lead(self) -> bool:
        if self._db.is_sqlite:
            return True
        return await asyncio.to_thread(self._check)

    def _check(self) -> bool:
        try:
            if self._conn is None:
                self._conn = self._db.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT"
                )
            if self._held:
                self._conn.execute(text("SELECT 1"))  # the lock lives as long as the connection
            else:
                got = self._conn.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                ).scalar()
                if got:
                    log.warning("this process now does the periodic work (it leads)")
                self._held = bool(got)
        except DBAPIError as exc:  # the connection is gone, and with it any lock it held
            log.warning("leadership check failed (%s); trying again on the next turn", exc)
            self.close()
        return self._held

    def close(self) -> None:
        """Give up leading (another process takes over at its next check)."""
        conn, self._conn = self._conn, None
        self._held = self._db.is_sqlite
        if conn is not None:  # really closed, not handed back to the pool with the lock
            with contextlib.suppress(DBAPIError):
                conn.invalidate()
                conn.close()


async def periodically(
    clock: Clock,
    leadership: Leadership,
    every: float,
    work: Callable[[], Awaitable[object]],
    what: str,
) -> None:
    """Do ``work()`` every ``every`` seconds of ``clock``, forever, in the process that leads;
    a failure is logged and the next turn comes as usual (cancel the task to stop)."""
    while True:
        await clock.sleep(every)
        try:
            if await leadership.lead():
                await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed", what)
