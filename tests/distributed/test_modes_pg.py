"""The durable-execution suite's run modes and limits in distributed mode: two engines (two
worker processes: each its own procrastinate queue, connections and worker id) on one
PostgreSQL database, wired as ``sous worker`` wires them (:func:`sous.distributed.install`).
The probe's slow actions sleep on the test's clock, so what overlaps is seen across both.

What must hold across workers: a concurrency key's runs never overlap and go in order;
``parallel`` never exceeds ``max_runs``; ``queued`` goes one at a time in order; a waiting run
keeps its place; a flood window counts the runs of every process and tells the owners once.
What cannot hold is refused when the recipe is saved (``single``, ``restart``, ``queued`` with
``max_runs``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import text

from engine import Engine, EngineSettings, RecipeError
from engine.model.events import NewEvent
from engine.queue.procrastinate import ProcrastinateJobQueue
from engine.store.db import Database
from sous.distributed import install
from tests.distributed.conftest import FAST
from tests.distributed.pg import PgManualClock
from tests.engine.test_durable_support import Probe, add, registry_for, runs, steps
from tests.fakes import Recorder

pytestmark = pytest.mark.postgres

SLOW = {"use": "probe.slow", "with": {"key": "{{ product.id }}", "tag": "{{ n }}"}}


def product(pid: int, n: int) -> dict[str, Any]:
    return {"product": {"id": pid}, "n": f"{pid}-{n}"}


@asynccontextmanager
async def workers(
    db: Database, clock: PgManualClock, probe: Probe, count: int = 2
) -> AsyncIterator[list[Engine]]:
    """``count`` engines on one database, as ``count`` ``sous worker`` processes."""
    registry = registry_for(probe, Recorder())
    engines = []
    for _ in range(count):
        queue = ProcrastinateJobQueue(db, clock, FAST)
        engine = Engine(db, registry, clock=clock, queue=queue, settings=EngineSettings(workers=4))
        install(engine)
        engines.append(engine)
    for engine in engines:
        await engine.start()
    try:
        yield engines
    finally:
        for engine in engines:
            await engine.stop()
            await engine.queue.close()


async def until(cond: Callable[[], bool], limit: float = 30.0) -> None:
    """Poll ``cond`` (the queue's own waits are real seconds); ``limit`` turns a hang into a
    failure."""
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


def busy(engines: list[Engine]) -> int:
    return sum(e.workers.busy for e in engines)


_WAITING = text("""
SELECT count(*) FILTER (WHERE j.status = 'doing'),
       count(*) FILTER (WHERE j.status = 'todo' AND (j.scheduled_at IS NULL
                        OR j.scheduled_at <= now()) AND (j.lock IS NULL OR NOT EXISTS (
           SELECT 1 FROM procrastinate_jobs AS o WHERE o.lock = j.lock
           AND (o.status = 'doing' OR (o.status = 'todo' AND o.id < j.id)))))
FROM procrastinate_jobs AS j""")


def claimed_and_free(db: Database) -> tuple[int, int]:
    """Jobs being executed, and jobs a worker could take now (due, their lock free)."""
    with db.engine.connect() as conn:
        doing, free = conn.execute(_WAITING).one()
    return int(doing), int(free)


async def settled(engines: list[Engine], probe: Probe) -> None:
    """No job a worker could take, and every job taken sleeps on the clock."""
    db = engines[0].db
    await asyncio.sleep(0.05)  # let sleepers the clock just woke, and their writes, go first

    def still() -> bool:
        doing, free = claimed_and_free(db)
        return free == 0 and doing == probe.sleeping == busy(engines)

    await until(still)


async def finish(engines: list[Engine], clock: PgManualClock, probe: Probe) -> None:
    for _ in range(100):
        await settled(engines, probe)
        if not probe.sleeping and not engines[0].queue.depth():
            return
        clock.advance(5 if probe.sleeping else 3600)  # a slow step, or a wait of an hour
    raise AssertionError("the runs did not finish")


async def fire(engine: Engine, payload: dict[str, Any]) -> str:
    return (await engine.ingest(NewEvent(type="probe.event", payload=payload))).runs[0]


async def test_a_keys_runs_never_overlap_and_keep_their_order_across_workers(
    pg_db: Database, pg_clock: PgManualClock
) -> None:
    probe = Probe()
    async with workers(pg_db, pg_clock, probe) as engines:
        uid = add(
            engines[0], {"id": "keyed", "concurrency_key": "{{ product.id }}", "actions": [SLOW]}
        )
        for engine in engines[1:]:
            engine.reload()
        for n in range(3):
            for pid in (1, 2, 3):
                await fire(engines[(n + pid) % 2], product(pid, n))  # ingested by both
        await finish(engines, pg_clock, probe)
        assert [r.status for r in runs(engines[0], uid)] == ["succeeded"] * 9
    assert dict(probe.most) == {"1": 1, "2": 1, "3": 1}
    assert probe.most_running == 3  # different products side by side, in either worker
    for pid in (1, 2, 3):
        assert [t for t in probe.order if t.startswith(f"{pid}-")] == [
            f"{pid}-{n}" for n in range(3)
        ]


async def test_parallel_never_exceeds_max_runs_across_workers(
    pg_db: Database, pg_clock: PgManualClock
) -> None:
    probe = Probe()
    async with workers(pg_db, pg_clock, probe) as engines:
        uid = add(engines[0], {"id": "wide", "mode": "parallel", "max_runs": 2, "actions": [SLOW]})
        engines[1].reload()
        for n in range(8):
            await fire(engines[n % 2], product(n, 0))
        await settled(engines, probe)
        assert 1 <= probe.running <= 2
        await finish(engines, pg_clock, probe)
        assert [r.status for r in runs(engines[0], uid)] == ["succeeded"] * 8
    assert probe.most_running <= 2
    wide = {"id": "wide", "mode": "parallel", "max_runs": 50, "actions": [SLOW]}
    probe = Probe()
    async with workers(pg_db, pg_clock, probe) as engines:  # 8 workers' slots in all
        document = {**wide, "name": "wide", "trigger": {"type": "probe.event"}}
        engines[0].recipes.upsert("default", document, source="test")
        for engine in engines:
            engine.reload()
        for n in range(8):
            await fire(engines[n % 2], product(n, 1))
        await finish(engines, pg_clock, probe)
    assert probe.most_running > 2  # the limit, not the spreading, held them back before


async def test_queued_runs_one_at_a_time_in_order_and_a_wait_keeps_its_place(
    pg_db: Database, pg_clock: PgManualClock
) -> None:
    probe = Probe()
    pause = {"id": "pause", "use": "core.wait", "with": {"for": "1h"}}
    async with workers(pg_db, pg_clock, probe) as engines:
        uid = add(engines[0], {"id": "line", "mode": "queued", "actions": [pause, SLOW]})
        engines[1].reload()
        made = [await fire(engines[n % 2], product(1, n)) for n in range(4)]
        await until(lambda: runs(engines[0], uid)[0].status == "waiting")
        await settled(engines, probe)
        assert probe.running == 0  # the first waits an hour, the others wait for it
        assert [r.status for r in runs(engines[0], uid)] == [
            "waiting",
            "queued",
            "queued",
            "queued",
        ]
        pg_clock.advance(3600)
        await finish(engines, pg_clock, probe)
        assert [r.status for r in runs(engines[0], uid)] == ["succeeded"] * 4
        assert [s.status for s in steps(engines[0], made[0])] == ["succeeded", "succeeded"]
    assert probe.order == ["1-0", "1-1", "1-2", "1-3"]
    assert probe.most_running == 1


async def test_a_flood_window_counts_every_workers_runs_and_tells_once(
    pg_db: Database, pg_clock: PgManualClock
) -> None:
    probe = Probe()
    note = {"id": "note", "use": "probe.write", "with": {"tag": "{{ n }}"}}
    async with workers(pg_db, pg_clock, probe) as engines:
        uid = add(
            engines[0], {"id": "flood", "flood": {"max_runs": 3, "per": "1h"}, "actions": [note]}
        )
        engines[1].reload()
        made = [await fire(engines[n % 2], product(n, 0)) for n in range(7)]
        await until(lambda: engines[0].queue.depth() == 0 and busy(engines) == 0)
        statuses = [r.status for r in runs(engines[0], uid)]
        told = [r for r in runs(engines[0]) if r.recipe_uid != uid]
    assert statuses.count("succeeded") == 3 and statuses.count("held") == 4
    assert len(made) == 7
    with pg_db.engine.connect() as conn:
        notices = conn.execute(
            text("SELECT count(*) FROM event WHERE type = 'sous.recipe.flooded'")
        ).scalar_one()
    assert notices == 1  # the owners were told once, though both workers held runs
    assert told == []


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        ({"mode": "single"}, "mode", "mode single is not available in distributed mode"),
        ({"mode": "restart"}, "mode", "mode restart is not available in distributed mode"),
        ({"mode": "queued", "max_runs": 3}, "max_runs", "max_runs of a queued recipe"),
    ],
)
async def test_what_cannot_hold_across_workers_is_refused_when_saved(
    pg_db: Database, pg_clock: PgManualClock, document: dict[str, Any], path: str, words: str
) -> None:
    async with workers(pg_db, pg_clock, Probe(), count=1) as (engine,):
        with pytest.raises(RecipeError) as refused:
            add(engine, {"id": "x", "actions": [SLOW], **document})
        assert [d.path for d in refused.value.details] == [path]
        assert words in refused.value.details[0].message
        add(engine, {"id": "fine", "mode": "queued", "actions": [SLOW]})  # no line limit: fine
