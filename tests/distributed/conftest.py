"""Fixtures of the distributed-mode tests (``pg_url`` and ``pg_db`` are in tests/conftest.py):
a queue-aware manual clock and a procrastinate queue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.queue.procrastinate import ProcrastinateJobQueue, QueueTuning
from engine.store.db import Database
from tests.distributed.pg import PgManualClock

FAST = QueueTuning(heartbeat=0.2, stalled_after=1.0, poll=0.2)


@pytest.fixture
def pg_clock(pg_db: Database) -> PgManualClock:
    return PgManualClock(pg_db)


@pytest.fixture
async def pg_queue(
    pg_db: Database, pg_clock: PgManualClock
) -> AsyncIterator[ProcrastinateJobQueue]:
    queue = ProcrastinateJobQueue(pg_db, pg_clock, FAST)
    yield queue
    await queue.close()
