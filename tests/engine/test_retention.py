"""Retention: rows created in the past, a ManualClock, and a cleanup that deletes in batches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from engine import Engine
from engine.clock import ManualClock
from engine.model.events import NewEvent
from engine.ops.retention import Retention, RetentionSettings
from engine.store.db import Database, Tx
from engine.store.models import EventRow, JobRow, MatchRow, RunRow, StepRow
from engine.store.schedule_models import ScheduleStateRow
from engine.timing.scheduler import Scheduler

EVENTS = EventRow.__table__  # type: ignore[attr-defined]
MATCHES = MatchRow.__table__  # type: ignore[attr-defined]
RUNS = RunRow.__table__  # type: ignore[attr-defined]
STEPS = StepRow.__table__  # type: ignore[attr-defined]
JOBS = JobRow.__table__  # type: ignore[attr-defined]
STATES = ScheduleStateRow.__table__  # type: ignore[attr-defined]


class Past:
    """Writes events, runs (with steps) and match rows as they would be after ``age`` days."""

    def __init__(self, db: Database, clock: ManualClock) -> None:
        self.db = db
        self.clock = clock
        self.rows: dict[Any, list[dict[str, Any]]] = {EVENTS: [], RUNS: [], STEPS: [], MATCHES: []}

    def ago(self, days: float) -> datetime:
        return self.clock.now() - timedelta(days=days)

    def event(self, eid: str, days: float, workspace: str = "default") -> str:
        when = self.ago(days)
        self.rows[EVENTS].append(
            {
                "id": eid,
                "workspace_id": workspace,
                "type": "test.stock",
                "payload": {},
                "source": "api",
                "dedup_key": eid,
                "occurred_at": when,
                "received_at": when,
                "dispatched": True,
            }
        )
        self.rows[MATCHES].append(
            {
                "event_id": eid,
                "recipe_uid": "rcp_x",
                "workspace_id": workspace,
                "recipe_version": 1,
                "matched": False,
                "stage": "conditions",
            }
        )
        return eid

    def run(self, rid: str, eid: str, status: str, days: float, steps: int = 2) -> str:
        finished = self.ago(days)
        self.rows[RUNS].append(
            {
                "id": rid,
                "workspace_id": "default",
                "recipe_uid": f"rcp_{rid}",
                "recipe_version": 1,
                "event_id": eid,
                "status": status,
                "next_step": steps,
                "depth": 0,
                "created_at": finished - timedelta(minutes=1),
                "finished_at": None if status in ("running", "queued", "held") else finished,
            }
        )
        for index in range(steps):
            self.rows[STEPS].append(
                {
                    "run_id": rid,
                    "index": index,
                    "step_id": f"s{index}",
                    "use": "test.record",
                    "status": "succeeded",
                    "attempts": 1,
                }
            )
        return rid

    def write(self) -> None:
        def fn(tx: Tx) -> None:
            for table, rows in self.rows.items():
                if rows:
                    tx.conn.execute(insert(table), rows)

        self.db.run_sync(fn)
        for rows in self.rows.values():
            rows.clear()


def column(db: Database, col: Any) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.execute(select(col)).scalars())


def ids(db: Database, table: Any) -> set[str]:
    return column(db, table.c.id)


def count(db: Database, table: Any) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.fixture
def past(db: Database, clock: ManualClock) -> Past:
    return Past(db, clock)


async def test_the_right_rows_go(db: Database, clock: ManualClock, past: Past) -> None:
    past.run("ok_old", past.event("e_ok_old", 15), "succeeded", 15)
    past.run("ok_new", past.event("e_ok_new", 13), "succeeded", 13)
    past.run("skip_old", past.event("e_skip_old", 20), "skipped", 20)
    past.run("fail_30", past.event("e_fail_30", 30), "failed", 30)
    past.run("fail_91", past.event("e_fail_91", 91), "failed", 91)
    past.run("loop_100", past.event("e_loop_100", 100), "loop_stopped", 100)
    past.run("partial_60", past.event("e_partial_60", 60), "succeeded_with_errors", 60)
    past.run("running", past.event("e_running", 200), "running", 200)
    past.run("held", past.event("e_held", 200), "held", 200)
    past.event("e_alone_20", 20)
    past.event("e_alone_5", 5)
    past.event("e_queued_20", 20, workspace="other")
    both = past.event("e_both", 20)
    past.run("both_ok", both, "succeeded", 15)
    past.run("both_failed", both, "failed", 15)
    past.write()
    db.run_sync(
        lambda tx: tx.conn.execute(
            insert(JOBS),
            [
                {
                    "id": "job_1",
                    "kind": "normalize",
                    "ref": "e_queued_20",
                    "status": "queued",
                    "attempts": 0,
                    "due_at": clock.now(),
                    "created_at": clock.now(),
                }
            ],
        )
    )

    report = await Retention(db, clock).run()

    assert ids(db, RUNS) == {"ok_new", "fail_30", "partial_60", "running", "held", "both_failed"}
    assert ids(db, EVENTS) == {
        "e_ok_new",
        "e_fail_30",
        "e_partial_60",
        "e_running",
        "e_held",
        "e_alone_5",
        "e_queued_20",
        "e_both",
    }
    assert column(db, STEPS.c.run_id) == ids(db, RUNS)
    assert column(db, MATCHES.c.event_id) == ids(db, EVENTS)
    assert (report.runs, report.steps, report.events, report.matches) == (5, 10, 5, 5)


async def test_keep_times_are_settings(db: Database, clock: ManualClock, past: Past) -> None:
    past.run("ok", past.event("e_ok", 3), "succeeded", 3)
    past.run("failed", past.event("e_failed", 3), "failed", 3)
    past.write()
    await Retention(db, clock, RetentionSettings.days(succeeded=2, failed=7, events=2)).run()
    assert ids(db, RUNS) == {"failed"} and ids(db, EVENTS) == {"e_failed"}


async def test_deletes_in_batches_of_the_configured_size(
    db: Database, clock: ManualClock, past: Past
) -> None:
    for n in range(1203):
        past.run(f"r{n:04}", past.event(f"e{n:04}", 20), "succeeded", 20, steps=1)
    past.run("keep", past.event("e_keep", 1), "succeeded", 1, steps=1)
    past.write()
    retention = Retention(db, clock, RetentionSettings(batch_size=500))
    removed: list[tuple[int, int]] = []
    write = db.writer.write

    async def spy(fn: Callable[[Tx], Any]) -> Any:
        runs, events = count(db, RUNS), count(db, EVENTS)
        result = await write(fn)
        removed.append((runs - count(db, RUNS), events - count(db, EVENTS)))
        return result

    db.writer.write = spy  # type: ignore[method-assign]
    report = await retention.run()
    assert report.batches == [500, 500, 203, 500, 500, 203]
    assert [r for r in removed if r != (0, 0)] == [
        (500, 0),
        (500, 0),
        (203, 0),
        (0, 500),
        (0, 500),
        (0, 203),
    ]
    assert ids(db, RUNS) == {"keep"} and ids(db, EVENTS) == {"e_keep"}
    assert count(db, STEPS) == 1


async def test_the_engine_goes_on_between_batches(
    engine: Engine, clock: ManualClock, past: Past
) -> None:
    for n in range(30):
        past.run(f"r{n:02}", past.event(f"e{n:02}", 20), "succeeded", 20)
    past.write()
    retention = Retention(engine.db, clock, RetentionSettings(batch_size=10))
    first_batch = asyncio.Event()
    write = engine.db.writer.write

    async def spy(fn: Callable[[Tx], Any]) -> Any:
        result = await write(fn)
        first_batch.set()
        return result

    engine.db.writer.write = spy  # type: ignore[method-assign]
    cleanup = asyncio.create_task(retention.run())
    await first_batch.wait()
    result = await engine.ingest(NewEvent(type="test.stock", payload={"product": {"id": 1}}))
    assert not cleanup.done()  # the event was stored while the cleanup still had batches to go
    await cleanup
    assert result.event_id in ids(engine.db, EVENTS) and count(engine.db, RUNS) == 0


async def test_a_pause_between_batches_waits_on_the_clock(
    db: Database, clock: ManualClock, past: Past
) -> None:
    for n in range(4):
        past.run(f"r{n}", past.event(f"e{n}", 20), "failed", 100)
    past.write()
    cleanup = asyncio.create_task(
        Retention(db, clock, RetentionSettings(batch_size=2, pause=5)).run()
    )
    seen: list[tuple[int, int]] = []
    while True:
        await _until(lambda: clock.sleepers == 1 or cleanup.done())
        if cleanup.done():
            break
        seen.append((count(db, RUNS), count(db, EVENTS)))
        clock.advance(5)
    assert seen == [(2, 4), (0, 4), (0, 2), (0, 0)]  # every full batch is followed by a pause
    assert (await cleanup).batches == [2, 2, 2, 2]


async def test_the_scheduler_runs_it_and_forgets_deleted_recipes(
    engine: Engine, clock: ManualClock, past: Past
) -> None:
    past.run("old", past.event("e_old", 30), "succeeded", 30)
    past.write()
    stored = engine.recipes.create(
        "default",
        {
            "id": "kept",
            "name": "kept",
            "trigger": {"type": "test.stock"},
            "actions": [{"use": "test.record"}],
        },
    )
    now = clock.now()
    states = [
        {
            "recipe_uid": uid,
            "workspace_id": "default",
            "recipe_version": 1,
            "last_scheduled_for": now,
            "updated_at": now,
        }
        for uid in (stored.uid, "rcp_gone")
    ]
    engine.db.run_sync(lambda tx: tx.conn.execute(insert(STATES), states))
    settings = RetentionSettings(every=timedelta(hours=1))
    retention = Retention(engine.db, clock, settings)
    scheduler = Scheduler(engine)
    scheduler.every("retention", settings.every, retention.run)
    clock.advance(1800)
    assert (await scheduler.tick()).started == []
    clock.advance(1800)
    assert (await scheduler.tick()).started == ["retention"]
    await scheduler.settle()
    assert ids(engine.db, RUNS) == set() and ids(engine.db, EVENTS) == set()
    assert column(engine.db, STATES.c.recipe_uid) == {stored.uid}
    assert retention.last is not None and retention.last.schedule_states == 1


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        RetentionSettings(batch_size=0)
    with pytest.raises(ValueError):
        RetentionSettings.days(failed=-1)


async def _until(condition: Callable[[], bool], turns: int = 100) -> None:
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")
