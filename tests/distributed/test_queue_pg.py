"""The procrastinate queue where it goes beyond the contract suite: several processes (here,
queue instances with their own connections and worker ids) sharing one PostgreSQL queue."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import text

from engine.queue import NewJob
from engine.queue.procrastinate import (
    ProcrastinateJobQueue,
    QueueTuning,
    _migrations,
    install_schema,
)
from engine.store.db import Database
from tests.distributed.conftest import FAST
from tests.distributed.pg import PgManualClock

pytestmark = pytest.mark.postgres


async def enqueue(db: Database, queue: ProcrastinateJobQueue, *jobs: NewJob) -> list[str]:
    return await db.writer.write(lambda tx: queue.enqueue(tx, list(jobs)))


def silence(db: Database, worker_id: int | None) -> None:
    """Make a worker look dead: its last heartbeat an hour ago."""
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour' "
                "WHERE id = :id"
            ),
            {"id": worker_id},
        )


def jobs_in(db: Database, status: str) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM procrastinate_jobs"
                    " WHERE status = CAST(:s AS procrastinate_job_status)"
                ),
                {"s": status},
            ).scalar_one()
        )


async def test_a_dead_workers_job_is_recovered_by_another(pg_db, pg_clock, pg_queue) -> None:
    other = ProcrastinateJobQueue(pg_db, pg_clock, QueueTuning(heartbeat=60, stalled_after=1.0))
    await enqueue(pg_db, other, NewJob("run", "x"), NewJob("run", "y"))
    claimed = await asyncio.wait_for(other.get(), 2)
    assert claimed.ref == "x"
    assert await pg_queue.recover() == 0  # its worker is alive: nothing to take back
    silence(pg_db, other.worker_id)
    assert await pg_queue.recover() == 1
    refs = sorted([(await asyncio.wait_for(pg_queue.get(), 2)).ref for _ in range(2)])
    assert refs == ["x", "y"]
    # The first worker finishing late does not fail its state write.
    await pg_db.writer.write(lambda tx: other.complete(tx, claimed))
    await other.close()


async def test_a_closed_queue_hands_its_jobs_back_at_once(pg_db, pg_clock, pg_queue) -> None:
    other = ProcrastinateJobQueue(pg_db, pg_clock, FAST)
    await enqueue(pg_db, other, NewJob("run", "held"))
    assert (await asyncio.wait_for(other.get(), 2)).ref == "held"
    await other.close()  # unregisters its worker: the job has no live owner any more
    assert await pg_queue.recover() == 1
    job = await asyncio.wait_for(pg_queue.get(), 2)
    assert (job.ref, job.attempts) == ("held", 1)


async def test_two_workers_never_get_the_same_job(pg_db, pg_clock) -> None:
    queues = [ProcrastinateJobQueue(pg_db, pg_clock, FAST) for _ in range(2)]
    refs = [f"j{i}" for i in range(200)]
    await enqueue(
        pg_db, queues[0], *(NewJob("run", r, lock_key=f"k{i % 7}") for i, r in enumerate(refs))
    )
    taken: Counter[str] = Counter()
    by_queue: Counter[int] = Counter()

    async def consume(n: int, queue: ProcrastinateJobQueue) -> None:
        while sum(taken.values()) < len(refs):
            try:
                job = await asyncio.wait_for(queue.get(), 0.5)
            except TimeoutError:
                continue
            taken[job.ref] += 1
            by_queue[n] += 1
            await pg_db.writer.write(lambda tx, j=job: queue.complete(tx, j))

    await asyncio.wait_for(
        asyncio.gather(*(consume(n, q) for n, q in enumerate(queues) for _ in range(4))), 30
    )
    assert taken == Counter(refs)
    assert by_queue[0] > 0 and by_queue[1] > 0
    assert jobs_in(pg_db, "todo") == jobs_in(pg_db, "doing") == 0
    for queue in queues:
        await queue.close()


async def test_a_released_lock_wakes_another_process_without_polling(pg_db, pg_clock) -> None:
    slow = QueueTuning(poll=30.0, heartbeat=30.0)
    first, second = (ProcrastinateJobQueue(pg_db, pg_clock, slow) for _ in range(2))
    await enqueue(pg_db, first, NewJob("run", "a", lock_key="p"), NewJob("run", "b", lock_key="p"))
    a = await asyncio.wait_for(first.get(), 2)
    waiting = asyncio.create_task(second.get())
    await asyncio.sleep(0.3)
    assert not waiting.done()  # b waits for the key
    await pg_db.writer.write(lambda tx: first.complete(tx, a))
    b = await asyncio.wait_for(waiting, 2)  # far sooner than the 30 s poll
    assert b.ref == "b"
    for queue in (first, second):
        await queue.close()


async def test_hints_stay_in_the_process_that_enqueued(pg_db, pg_clock, pg_queue) -> None:
    other = ProcrastinateJobQueue(pg_db, pg_clock, FAST)
    await enqueue(pg_db, pg_queue, NewJob("run", "mine", hint={"cached": True}))
    await enqueue(pg_db, other, NewJob("run", "theirs", hint={"cached": True}))
    first = await asyncio.wait_for(pg_queue.get(), 2)
    second = await asyncio.wait_for(pg_queue.get(), 2)
    assert (first.ref, first.hint) == ("mine", {"cached": True})
    assert (second.ref, second.hint) == ("theirs", None)
    await other.close()


async def test_a_hint_is_not_used_once_another_worker_had_the_job(
    pg_db, pg_clock, pg_queue
) -> None:
    """The enqueuing process's state is stale once another worker ran (part of) the job."""
    other = ProcrastinateJobQueue(pg_db, pg_clock, QueueTuning(heartbeat=60, stalled_after=1.0))
    await enqueue(pg_db, pg_queue, NewJob("run", "mine", hint={"next_step": 0}))
    taken = await asyncio.wait_for(other.get(), 2)  # another process's worker takes it, and dies
    assert (taken.ref, taken.hint) == ("mine", None)
    silence(pg_db, other.worker_id)
    assert await pg_queue.recover() == 1
    again = await asyncio.wait_for(pg_queue.get(), 2)
    assert (again.ref, again.attempts, again.hint) == ("mine", 1, None)
    await other.close()


async def test_counts_split_due_and_delayed_jobs(pg_db, pg_clock: PgManualClock, pg_queue) -> None:
    later = pg_clock.now() + timedelta(minutes=10)
    await enqueue(pg_db, pg_queue, NewJob("run", "now"), NewJob("run", "later", due_at=later))
    assert (pg_queue.due(), pg_queue.depth()) == (1, 2)
    await asyncio.wait_for(pg_queue.get(), 2)
    assert (pg_queue.due(), pg_queue.depth()) == (0, 1)
    pg_clock.advance(600)
    assert (pg_queue.due(), pg_queue.depth()) == (1, 1)


async def test_enqueue_commits_with_the_event(pg_db, pg_queue) -> None:
    """The jobs are written on the caller's connection: they exist exactly when its rows do."""

    def write(tx, fail: bool) -> None:
        tx.conn.execute(text("CREATE TABLE IF NOT EXISTS probe (n int)"))
        tx.conn.execute(text("INSERT INTO probe VALUES (1)"))
        pg_queue.enqueue(tx, [NewJob("run", "with-probe")])
        if fail:
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        await pg_db.writer.write(lambda tx: write(tx, True))
    assert jobs_in(pg_db, "todo") == 0
    await pg_db.writer.write(lambda tx: write(tx, False))
    with pg_db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM probe")).scalar_one() == 1
    assert jobs_in(pg_db, "todo") == 1


def test_schema_install_is_repeatable(pg_db) -> None:
    assert "is at" in install_schema(pg_db.engine)
    with pg_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM sous_procrastinate_schema"))
    assert "found" in install_schema(pg_db.engine)
    assert "is at" in install_schema(pg_db.engine)


def test_upgrades_apply_the_newer_migration_files_in_order() -> None:
    names = [p.name for p in _migrations((3, 1, 0), (3, 4, 0))]
    assert names == [
        "03.02.00_01_pre_batch_defer_jobs.sql",
        "03.02.00_50_post_batch_defer_jobs.sql",
        "03.03.00_01_pre_priority_lock_fetch_job.sql",
        "03.04.00_01_pre_add_retry_failed_job_procedure.sql",
        "03.04.00_50_post_add_retry_failed_job_procedure.sql",
    ]
