"""Schedules in distributed mode: two workers, each with its own connection, queue and clock
reading, fire the same schedule; procrastinate's periodic defers let one job per tick through,
and the inbox's dedup key stops a firing deferred twice from running twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from engine import Engine, EngineSettings
from engine.context import Services
from engine.queue.procrastinate import ProcrastinateJobQueue
from engine.registry import Registry
from engine.store.db import Database
from engine.timing.schedules import iso
from sous.container import connectors
from sous.worker import SCHEDULE_JOB, ScheduleFirer, schedules_of
from tests.distributed.conftest import FAST
from tests.distributed.pg import PgManualClock
from tests.fakes import Recorder, recording_connector

pytestmark = pytest.mark.postgres

RECIPE = {
    "id": "every-minute",
    "name": "every minute",
    "trigger": {"type": "schedule.interval", "with": {"every": "1m"}},
    "actions": [{"use": "test.record", "with": {"message": "tick {{ scheduled_for }}"}}],
}


def registry(recorder: Recorder) -> Registry:
    found = connectors()
    if not any(c.name == "schedule" for c in found):
        from connectors.schedule import CONNECTOR

        found.append(CONNECTOR)
    return Registry([*found, recording_connector(recorder)])


@pytest.fixture
async def workers(
    pg_url: str, pg_db: Database, pg_clock: PgManualClock
) -> AsyncIterator[list[ScheduleFirer]]:
    """Two workers as two processes would be: a database handle, a queue, an engine each."""
    recorder = Recorder()
    firers = []
    for _ in range(2):
        db = Database(pg_url)
        queue = ProcrastinateJobQueue(db, pg_clock, FAST)
        engine = Engine(
            db,
            registry(recorder),
            clock=pg_clock,
            services=Services(),
            queue=queue,
            settings=EngineSettings(workers=2),
        )
        firers.append(ScheduleFirer(engine, queue))
    stored = firers[0].engine.recipes.create("default", RECIPE)
    for firer in firers:
        firer.engine.reload()
        firer.engine.handle(SCHEDULE_JOB, firer.handle)
    assert [s.uid for s in schedules_of(firers[1].engine)] == [stored.uid]
    yield firers
    for firer in firers:
        await firer.engine.stop()
        firer.engine.db.dispose()


def count(db: Database, sql: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


async def runs_succeeded(db: Database, expected: int) -> None:
    for _ in range(200):
        if count(db, "SELECT count(*) FROM run WHERE status = 'succeeded'") >= expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the schedule's runs did not finish")


async def test_two_workers_fire_each_tick_once(
    workers: list[ScheduleFirer], pg_clock, pg_db
) -> None:
    ticks = 4
    for _ in range(ticks):
        pg_clock.advance(60)
        now = pg_clock.now()
        made = await asyncio.gather(*(f.tick(schedules_of(f.engine), now) for f in workers))
        assert sorted(len(m) for m in made) == [0, 1]  # one worker's job, the other turned away
    assert (
        count(pg_db, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'schedule'")
        == ticks
    )
    for firer in workers:
        await firer.engine.start()
    await runs_succeeded(pg_db, ticks)
    assert count(pg_db, "SELECT count(*) FROM event WHERE source = 'schedule'") == ticks
    assert count(pg_db, "SELECT count(DISTINCT payload->>'scheduled_for') FROM event") == ticks


async def test_a_firing_deferred_twice_still_runs_once(
    workers: list[ScheduleFirer], pg_clock, pg_db
) -> None:
    """A worker far behind re-defers an old tick after procrastinate pruned its defer row."""
    first, late = workers
    pg_clock.advance(60)
    schedule = schedules_of(first.engine)[0]
    slot = schedule.timetable.next_after(schedule.since)
    assert len(await first.tick([schedule], pg_clock.now())) == 1
    pg_clock.advance(60)
    assert len(await first.tick([schedule], pg_clock.now())) == 1  # prunes the older defer
    again = await late.queue.defer_periodic(
        SCHEDULE_JOB, f"{schedule.uid}@{iso(slot)}", schedule.uid, int(slot.timestamp())
    )
    assert again is not None  # procrastinate let the old tick in a second time ...
    for firer in workers:
        await firer.engine.start()
    await runs_succeeded(pg_db, 2)
    for _ in range(100):
        if count(pg_db, "SELECT count(*) FROM procrastinate_jobs") == 0:
            break
        await asyncio.sleep(0.05)
    assert count(pg_db, "SELECT count(*) FROM procrastinate_jobs") == 0
    assert count(pg_db, "SELECT count(*) FROM run") == 2  # ... and the inbox kept it to one run
