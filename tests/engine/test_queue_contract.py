"""The JobQueue contract (engine/queue/base.py), run against every implementation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from engine.clock import ManualClock
from engine.queue import JobQueue, NewJob, SqlJobQueue
from engine.queue.base import QueueClosed
from engine.store.db import Database

Factory = Callable[[Database, ManualClock], JobQueue]
IMPLEMENTATIONS: dict[str, Factory] = {"sql": lambda db, clock: SqlJobQueue(db, clock)}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def queue(request, db: Database, clock: ManualClock) -> AsyncIterator[JobQueue]:
    q = IMPLEMENTATIONS[request.param](db, clock)
    yield q
    await q.close()


async def enqueue(db: Database, queue: JobQueue, *jobs: NewJob) -> list[str]:
    return await db.writer.write(lambda tx: queue.enqueue(tx, list(jobs)))


async def get(queue: JobQueue, timeout: float = 1.0):
    return await asyncio.wait_for(queue.get(), timeout)


async def test_enqueued_jobs_come_out_in_order(db, queue) -> None:
    await enqueue(db, queue, NewJob("run", "a"), NewJob("run", "b"))
    assert [(await get(queue)).ref for _ in range(2)] == ["a", "b"]
    assert queue.depth() == 0


async def test_rolled_back_enqueue_is_invisible(db, queue) -> None:
    def fail(tx):
        queue.enqueue(tx, [NewJob("run", "ghost")])
        raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        await db.writer.write(fail)
    assert queue.depth() == 0
    with pytest.raises(TimeoutError):
        await get(queue, 0.05)


async def test_delayed_job_waits_for_the_clock(db, queue, clock: ManualClock) -> None:
    await enqueue(db, queue, NewJob("run", "later", due_at=clock.now() + timedelta(minutes=5)))
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    clock.advance(301)
    job = await asyncio.wait_for(waiter, 1)
    assert job.ref == "later"


async def test_same_lock_key_never_runs_together(db, queue) -> None:
    await enqueue(
        db,
        queue,
        NewJob("run", "k1", lock_key="p1"),
        NewJob("run", "k2", lock_key="p1"),
        NewJob("run", "free"),
    )
    first = await get(queue)
    second = await get(queue)
    assert (first.ref, second.ref) == ("k1", "free")
    with pytest.raises(TimeoutError):
        await get(queue, 0.05)
    await db.writer.write(lambda tx: queue.complete(tx, first))
    assert (await get(queue)).ref == "k2"


async def test_retry_comes_back_later_with_attempts(db, queue, clock: ManualClock) -> None:
    await enqueue(db, queue, NewJob("run", "r"))
    job = await get(queue)
    await db.writer.write(lambda tx: queue.retry(tx, job, clock.now() + timedelta(seconds=30)))
    with pytest.raises(TimeoutError):
        await get(queue, 0.05)
    clock.advance(30)
    again = await get(queue)
    assert again.ref == "r" and again.attempts == 1


async def test_hasten_makes_a_waiting_job_due_now(db, queue, clock: ManualClock) -> None:
    later = clock.now() + timedelta(days=2)
    await enqueue(db, queue, NewJob("run", "parked", due_at=later), NewJob("run", "other", later))
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    await db.writer.write(lambda tx: queue.hasten(tx, "run", "parked", clock.now()))
    job = await asyncio.wait_for(waiter, 5)
    assert job.ref == "parked"
    with pytest.raises(TimeoutError):  # the other job still waits for its time
        await get(queue, 0.05)


async def test_recover_returns_unfinished_jobs_after_a_crash(db, clock: ManualClock) -> None:
    crashed = SqlJobQueue(db, clock)
    await db.writer.write(lambda tx: crashed.enqueue(tx, [NewJob("run", "x"), NewJob("run", "y")]))
    claimed = await get(crashed)
    assert claimed.ref == "x"  # claimed, never completed: the process dies here
    fresh = SqlJobQueue(db, clock)
    assert await fresh.recover() == 2
    assert sorted([(await get(fresh)).ref, (await get(fresh)).ref]) == ["x", "y"]
    await fresh.close()
    await crashed.close()


async def test_close_wakes_waiters(queue) -> None:
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    await queue.close()
    with pytest.raises(QueueClosed):
        await waiter
