"""The JobQueue contract suite (test_queue_contract.py), unchanged, against the procrastinate
queue on PostgreSQL. Only the fixtures differ: ``db`` is a PostgreSQL database (one per module,
emptied before each test) and ``clock`` a manual clock that also moves the queue's due times.
The crash-recovery test of the suite builds ``SqlJobQueue`` itself; its distributed counterpart
(a worker whose heartbeat stopped) is in tests/distributed/test_queue_pg.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.queue import JobQueue
from engine.queue.procrastinate import ProcrastinateJobQueue
from engine.store.db import Database
from tests.distributed.conftest import FAST
from tests.distributed.pg import PgManualClock
from tests.engine.test_queue_contract import (
    test_close_wakes_waiters,
    test_delayed_job_waits_for_the_clock,
    test_enqueued_jobs_come_out_in_order,
    test_hasten_makes_a_waiting_job_due_now,
    test_retry_comes_back_later_with_attempts,
    test_rolled_back_enqueue_is_invisible,
    test_same_lock_key_never_runs_together,
)

pytestmark = pytest.mark.postgres

__all__ = [
    "test_close_wakes_waiters",
    "test_delayed_job_waits_for_the_clock",
    "test_enqueued_jobs_come_out_in_order",
    "test_hasten_makes_a_waiting_job_due_now",
    "test_retry_comes_back_later_with_attempts",
    "test_rolled_back_enqueue_is_invisible",
    "test_same_lock_key_never_runs_together",
]


@pytest.fixture
def db(pg_db: Database) -> Database:
    return pg_db


@pytest.fixture
def clock(db: Database) -> PgManualClock:
    return PgManualClock(db)


@pytest.fixture(params=["procrastinate"])
async def queue(db: Database, clock: PgManualClock) -> AsyncIterator[JobQueue]:
    q = ProcrastinateJobQueue(db, clock, FAST)
    yield q
    await q.close()
