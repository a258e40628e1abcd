"""Fixtures of the distributed-mode tests: one PostgreSQL database per module, emptied between
tests; a queue-aware manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from engine.db import Database
from engine.queue.procrastinate import ProcrastinateJobQueue, QueueTuning
from tests.distributed.pg import PgManualClock, fresh_database, truncate

FAST = QueueTuning(heartbeat=0.2, stalled_after=1.0, poll=0.2)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url)
    truncate(database)
    yield database
    database.dispose()


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
