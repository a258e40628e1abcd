"""Schedules and polls, driven by a ManualClock through ``Scheduler.tick`` (no wall-clock waits)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from connectors.schedule import CONNECTOR as SCHEDULE
from engine import Engine
from engine.authoring.dryrun import dry_run
from engine.authoring.validation import validate_document
from engine.clock import ManualClock
from engine.model.durations import parse_duration
from engine.model.events import Event, NewEvent
from engine.registry import Connector, Registry, TriggerSpec
from engine.store.models import EventRow, RunRow
from engine.store.schedule_models import ScheduleStateRow
from engine.timing.scheduler import Scheduler
from engine.timing.schedules import (
    CronTimetable,
    IntervalTimetable,
    Misfire,
    PollScope,
    PollSource,
    due_firings,
)
from sous.container import connectors
from tests.fakes import Recorder, recording_connector

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # the ManualClock's start, a Friday
AMS = ZoneInfo("Europe/Amsterdam")
ERP = Connector(
    name="erp",
    description="a stock system without webhooks",
    triggers=(TriggerSpec(type="erp.stock_changed", description="stock changed", kind="poll"),),
)


@pytest.fixture
def registry(recorder: Recorder) -> Registry:
    found = [*connectors(), recording_connector(recorder), ERP]
    if all(c.name != "schedule" for c in found):
        found.append(SCHEDULE)
    return Registry(found)


def doc(
    trigger: str, with_: dict[str, Any], slug: str = "tick", store: Any = "*"
) -> dict[str, Any]:
    return {
        "id": slug,
        "name": slug,
        "store": store,
        "trigger": {"type": trigger, "with": with_},
        "actions": [
            {"id": "note", "use": "test.record", "with": {"message": "{{ scheduled_for }}"}}
        ],
    }


def add(engine: Engine, document: dict[str, Any]) -> str:
    stored = engine.recipes.create("default", document)
    engine.refresh(stored)
    return stored.uid


def at(hour: int, minute: int = 0, day: int = 27) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def times(report_or_list: Any) -> list[datetime]:
    return [f.scheduled_for for f in report_or_list.fired]


# -- pure parts -----------------------------------------------------------------------------


def test_durations() -> None:
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == parse_duration(172_800) == parse_duration("172800")
    assert parse_duration("1w 1s") == timedelta(weeks=1, seconds=1)
    # one parser everywhere: decimals and milliseconds are durations, a boolean is not
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration("500ms") == timedelta(milliseconds=500)
    assert parse_duration("30m1h") == timedelta(minutes=90)
    bad: list[Any] = ["", "15 minutes", "m", True, False, None, "1h soon"]
    for value in bad:
        with pytest.raises(ValueError):
            parse_duration(value)


@pytest.mark.parametrize(
    ("trigger", "with_", "path", "start"),
    [
        (
            "schedule.cron",
            {"cron": "61 8 * * *"},
            "trigger.with.cron",
            "not a valid cron expression: ",
        ),
        (
            "schedule.cron",
            {"cron": "0 8 * * MON *"},
            "trigger.with.cron",
            "not a valid cron expression: ",
        ),
        (
            "schedule.cron",
            {"cron": "0 0 31 2 *"},
            "trigger.with.cron",
            "not a valid cron expression: ",
        ),
        (
            "schedule.cron",
            {"cron": "@daily", "timezone": "Mars/Base"},
            "trigger.with.timezone",
            "not a known time zone",
        ),
        (
            "schedule.cron",
            {"cron": "@daily", "misfire": "later"},
            "trigger.with.misfire",
            "input should be",
        ),
        ("schedule.interval", {"every": 30}, "trigger.with.every", "an interval must be between"),
        ("schedule.interval", {"every": "soon"}, "trigger.with.every", "not a valid interval"),
    ],
)
def test_invalid_trigger_options_are_named(
    registry: Registry, trigger: str, with_: dict[str, Any], path: str, start: str
) -> None:
    recipe, details = validate_document(doc(trigger, with_), registry)
    assert recipe is None
    assert [(d.path, d.message[: len(start)]) for d in details] == [(path, start)]


def test_valid_trigger_options(registry: Registry) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        (
            "schedule.cron",
            {
                "cron": "0 8 * * MON",
                "timezone": "Europe/Amsterdam",
                "misfire": "run_all",
                "max_catch_up": 5,
            },
        ),
        ("schedule.cron", {"cron": "@hourly"}),
        (
            "schedule.interval",
            {"every": "15m", "start_at": "2026-12-01T06:00:00+01:00", "misfire": "skip"},
        ),
        ("schedule.interval", {"every": 3600}),
    ]
    for trigger, with_ in cases:
        recipe, details = validate_document(doc(trigger, with_), registry)
        assert details == [] and recipe is not None


def test_cron_reads_in_its_time_zone_across_daylight_saving() -> None:
    weekly = CronTimetable("0 8 * * 1", AMS)
    assert weekly.next_after(T0) == at(7, day=30)  # 08:00 CET
    assert weekly.next_after(datetime(2026, 3, 25, tzinfo=UTC)) == datetime(
        2026, 3, 30, 6, 0, tzinfo=UTC
    )  # CEST


def test_a_repeated_wall_time_fires_once_unless_the_hour_is_a_wildcard() -> None:
    night = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # clocks go back at 03:00 CEST on the 25th
    fixed, count = CronTimetable("30 2 * * *", AMS).newest(night, night + timedelta(hours=6), 10)
    assert fixed == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)] and count == 1
    every, count = CronTimetable("30 * * * *", AMS).newest(night, night + timedelta(hours=6), 10)
    assert count == 6 and datetime(2026, 10, 25, 1, 30, tzinfo=UTC) in every


def test_interval_slots() -> None:
    grid = IntervalTimetable(T0, timedelta(minutes=15))
    assert grid.next_after(T0 - timedelta(days=1)) == T0  # nothing before the anchor
    assert grid.next_after(T0) == at(9, 15)
    assert grid.newest(T0, at(10, 7), 2) == ([at(9, 45), at(10)], 4)
    assert grid.newest(at(10), at(10, 14), 5) == ([], 0)


@pytest.mark.parametrize(
    ("misfire", "now", "fired", "skipped"),
    [
        (Misfire.RUN_ONCE, at(15, 30), [at(15)], 4),
        (Misfire.RUN_ALL, at(15, 30), [at(13), at(14), at(15)], 2),
        (Misfire.SKIP, at(15, 30), [], 5),
        (Misfire.SKIP, at(15, 0) + timedelta(seconds=30), [at(15)], 4),
    ],
)
def test_misfire_policies(
    misfire: Misfire, now: datetime, fired: list[datetime], skipped: int
) -> None:
    hourly = CronTimetable("0 * * * *", ZoneInfo("UTC"))
    due = due_firings(
        hourly, at(10), now, misfire=misfire, max_catch_up=3, grace=timedelta(minutes=1)
    )
    assert (due.fire, due.skipped, due.settled) == (fired, skipped, at(15))


# -- the scheduler ------------------------------------------------------------------------


async def test_cron_recipe_fires_once_per_firing(
    engine: Engine, clock: ManualClock, recorder: Recorder
) -> None:
    uid = add(engine, doc("schedule.cron", {"cron": "0 10 * * *"}, store="s1"))
    scheduler = Scheduler(engine)
    assert (await scheduler.tick()).fired == []
    assert scheduler.next_firing(uid) == at(10)
    clock.set(at(10) + timedelta(seconds=2))
    report = await scheduler.tick()
    again = await scheduler.tick()
    await engine.drain()
    assert times(report) == [at(10)] and again.fired == []
    assert [c[1]["message"] for c in recorder.calls] == ["2026-11-27T10:00:00+00:00"]
    with engine.db.session() as s:
        event = s.exec(select(EventRow)).one()
        state = s.get(ScheduleStateRow, uid)
    assert event.dedup_key == f"schedule:{uid}:2026-11-27T10:00:00+00:00"
    assert (event.source, event.store, event.target_recipe, event.type) == (
        "schedule",
        "s1",
        uid,
        "schedule.cron",
    )
    assert event.payload == {
        "scheduled_for": "2026-11-27T10:00:00+00:00",
        "fired_at": "2026-11-27T10:00:02+00:00",
        "recipe": "tick",
    }
    assert state is not None and state.last_scheduled_for.replace(tzinfo=UTC) == at(10)


async def test_a_scheduler_without_schedules_leaves_them_to_another_firer(
    engine: Engine, clock: ManualClock, recorder: Recorder
) -> None:
    uid = add(engine, doc("schedule.cron", {"cron": "0 10 * * *"}, store="s1"))
    scheduler = Scheduler(engine, schedules=False)
    ran: list[int] = []

    async def periodic() -> None:
        ran.append(1)

    scheduler.every("cleanup", timedelta(hours=1), periodic)
    clock.set(at(10) + timedelta(seconds=2))
    report = await scheduler.tick()
    await scheduler.settle()
    assert report.fired == [] and scheduler.next_firing(uid) is None
    assert report.started == ["cleanup"] and ran == [1]  # its periodic jobs still run


async def test_a_firing_computed_twice_is_stored_once(
    engine: Engine, clock: ManualClock, recorder: Recorder
) -> None:
    add(engine, doc("schedule.cron", {"cron": "0 10 * * *"}))
    first, second = Scheduler(engine), Scheduler(engine)  # two processes over one database
    await first.tick()
    await second.tick()
    clock.set(at(10))
    one = await first.tick()
    two = await second.tick()
    await engine.drain()
    assert [f.duplicate for f in one.fired + two.fired] == [False, True]
    assert len(recorder.calls) == 1


@pytest.mark.parametrize(
    ("with_", "fired", "skipped"),
    [
        ({"misfire": "run_once"}, [at(15)], 4),
        ({"misfire": "run_all", "max_catch_up": 3}, [at(13), at(14), at(15)], 2),
        ({"misfire": "run_all"}, [at(11), at(12), at(13), at(14), at(15)], 0),
        ({"misfire": "skip"}, [], 5),
    ],
)
async def test_missed_firings_after_downtime_follow_the_policy(
    engine: Engine,
    clock: ManualClock,
    recorder: Recorder,
    with_: dict[str, Any],
    fired: list[datetime],
    skipped: int,
) -> None:
    uid = add(engine, doc("schedule.cron", {"cron": "0 * * * *", **with_}))
    before = Scheduler(engine)
    await before.start(drive=False)
    clock.set(at(10))
    assert times(await before.tick()) == [at(10)]
    await before.stop()
    clock.set(at(15, 30))  # down from 10:00 to 15:30
    after = Scheduler(engine)
    await after.start(drive=False)
    assert after.counters["firings"] == len(fired)
    await engine.drain()
    assert sorted(c[1]["message"] for c in recorder.calls) == sorted(
        t.isoformat() for t in [at(10), *fired]
    )
    assert after.counters["skipped"] == skipped
    assert (await Scheduler(engine).tick()).fired == []  # settled up to 15:00 in the table
    assert after.next_firing(uid) == at(16)


async def test_a_changed_or_re_enabled_recipe_owes_nothing_from_before(
    engine: Engine, clock: ManualClock
) -> None:
    document = doc("schedule.cron", {"cron": "0 * * * *", "misfire": "run_all"})
    uid = add(engine, document)
    scheduler = Scheduler(engine)
    await scheduler.tick()
    engine.refresh(engine.recipes.set_enabled("default", "tick", False))
    clock.set(at(12, 30))
    assert (await scheduler.tick()).fired == []
    engine.refresh(engine.recipes.set_enabled("default", "tick", True))
    assert (await scheduler.tick()).fired == []  # 10:00-12:00 were while it was off
    clock.set(at(13))
    assert times(await scheduler.tick()) == [at(13)]
    clock.set(at(15, 30))
    engine.refresh(
        engine.recipes.update("default", "tick", {**document, "description": "edited"}, None)
    )
    assert (await scheduler.tick()).fired == []
    assert scheduler.next_firing(uid) == at(16)


async def test_sync_reports_and_deleted_recipes_stop(engine: Engine, clock: ManualClock) -> None:
    uid = add(engine, doc("schedule.interval", {"every": "15m"}))
    scheduler = Scheduler(engine)
    assert scheduler.sync().added == [uid]
    assert scheduler.sync().added == []
    engine.recipes.delete("default", "tick")
    engine.refresh(None, uid)
    assert scheduler.sync().removed == [uid]
    clock.advance(3600)
    assert (await scheduler.tick()).fired == []


async def test_interval_counts_from_enabling_or_from_start_at(
    engine: Engine, clock: ManualClock
) -> None:
    loose = add(
        engine, doc("schedule.interval", {"every": "15m", "misfire": "run_all"}, slug="loose")
    )
    pinned = add(
        engine,
        doc(
            "schedule.interval",
            {"every": 900, "start_at": "2026-11-27T10:05:00+01:00", "misfire": "run_all"},
            slug="pinned",
        ),
    )
    scheduler = Scheduler(engine)
    await scheduler.tick()
    clock.set(at(9, 35))
    report = await scheduler.tick()
    fired = {
        uid: [f.scheduled_for for f in report.fired if f.recipe_uid == uid]
        for uid in (loose, pinned)
    }
    assert fired == {loose: [at(9, 15), at(9, 30)], pinned: [at(9, 5), at(9, 20), at(9, 35)]}
    assert scheduler.next_firing(loose) == at(9, 45) and scheduler.next_firing(pinned) == at(9, 50)


async def test_schedule_events_not_addressed_to_a_recipe_fire_nothing(engine: Engine) -> None:
    add(engine, doc("schedule.cron", {"cron": "@daily"}))
    result = await engine.ingest(
        NewEvent(type="schedule.cron", payload={"recipe": "tick"}, source="api")
    )
    assert result.runs == [] and [d.stage for d in result.decisions] == ["trigger"]


async def test_recipe_in_a_time_zone_fires_at_local_time(
    engine: Engine, clock: ManualClock
) -> None:
    add(
        engine,
        doc(
            "schedule.cron", {"cron": "0 8 * * *", "timezone": "Europe/Amsterdam"}, store=["a", "b"]
        ),
    )
    scheduler = Scheduler(engine)
    await scheduler.tick()
    clock.set(at(7, day=28))
    report = await scheduler.tick()
    assert times(report) == [at(7, day=28)]
    with engine.db.session() as s:
        assert s.exec(select(EventRow.store)).one() is None  # several stores: the firing names none


# -- polling ------------------------------------------------------------------------------


class StockSystem:
    """A tiny ERP: items change over time; ``fetch`` returns those changed since ``since``."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.changes: list[tuple[datetime, str, int]] = []
        self.calls: list[tuple[PollScope, datetime | None]] = []
        self.broken = False

    def change(self, sku: str, level: int) -> None:
        self.changes.append((self.clock.now(), sku, level))

    async def fetch(self, scope: PollScope, since: datetime | None) -> list[NewEvent]:
        self.calls.append((scope, since))
        if self.broken:
            raise ConnectionError("the stock system is down")
        window = since - timedelta(minutes=1) if since else None  # overlaps the previous poll
        return [
            NewEvent(
                type="erp.stock_changed",
                payload={"sku": sku, "level": level},
                dedup_key=f"erp:{sku}:{when.isoformat()}",
                workspace="elsewhere",  # the scheduler keeps it in the polled workspace
            )
            for when, sku, level in self.changes
            if window is None or when >= window
        ]


async def test_a_poll_source_feeds_recipes_without_webhooks(
    engine: Engine, clock: ManualClock, recorder: Recorder
) -> None:
    erp = StockSystem(clock)
    uid = add(
        engine,
        {
            **doc("erp.stock_changed", {}, store="s1"),
            "actions": [{"use": "test.record", "with": {"message": "{{ sku }}={{ level }}"}}],
        },
    )
    scheduler = Scheduler(engine)
    scheduler.add_poll_source(PollSource("erp", timedelta(minutes=5), erp.fetch, types=("erp.*",)))
    erp.change("cap", 0)
    erp.change("hat", 3)
    assert (await scheduler.tick()).started == ["poll:erp"]
    await scheduler.settle()
    assert erp.calls == [(PollScope("default", "s1"), None)]

    clock.advance(240)
    erp.change("cap", 5)
    assert (await scheduler.tick()).started == []  # not due yet
    clock.advance(60)
    await scheduler.tick()
    await scheduler.settle()
    assert erp.calls[1] == (PollScope("default", "s1"), T0)
    await engine.drain()
    assert sorted(c[1]["message"] for c in recorder.calls) == ["cap=0", "cap=5", "hat=3"]
    with engine.db.session() as s:
        events = s.exec(select(EventRow)).all()
        runs = s.exec(select(RunRow)).all()
    assert {(e.workspace_id, e.store, e.source) for e in events} == {("default", "s1", "poll")}
    assert len(runs) == 3 and {r.recipe_uid for r in runs} == {uid}

    erp.broken = True
    clock.advance(300)
    await scheduler.tick()
    await scheduler.settle()
    erp.broken = False
    clock.advance(300)
    await scheduler.tick()
    await scheduler.settle()
    assert (
        erp.calls[-1][1] == erp.calls[-2][1] == T0 + timedelta(minutes=5)
    )  # a failed poll is retried from the same point

    engine.refresh(engine.recipes.set_enabled("default", "tick", False))
    clock.advance(300)
    calls = len(erp.calls)
    await scheduler.tick()
    await scheduler.settle()
    assert len(erp.calls) == calls  # nobody listens: nothing to poll


async def test_periodic_jobs_never_overlap(engine: Engine, clock: ManualClock) -> None:
    started: list[datetime] = []

    async def slow() -> None:
        started.append(clock.now())
        await clock.sleep(900)

    scheduler = Scheduler(engine)
    scheduler.every("slow", timedelta(minutes=10), slow)
    assert (await scheduler.tick()).started == []
    clock.advance(600)
    assert (await scheduler.tick()).started == ["slow"]
    await asyncio.sleep(0)
    assert clock.sleepers == 1
    clock.advance(600)  # still sleeping: this turn is skipped
    assert (await scheduler.tick()).started == []
    clock.advance(300)
    await scheduler.settle()
    assert (await scheduler.tick()).started == []  # next turn is on the 10-minute grid
    clock.advance(300)
    assert (await scheduler.tick()).started == ["slow"]
    await asyncio.sleep(0)
    assert started == [T0 + timedelta(minutes=10), T0 + timedelta(minutes=30)]
    await scheduler.stop()


# -- the APScheduler driver ---------------------------------------------------------------


async def test_driver_keeps_one_job_per_schedule_recipe(engine: Engine) -> None:
    uid = add(engine, doc("schedule.cron", {"cron": "0 10 * * *"}))
    scheduler = Scheduler(engine)
    scheduler.every("retention", timedelta(hours=1), _nothing)
    await scheduler.start()
    try:
        assert scheduler._driver is not None
        jobs = scheduler._driver.jobs()
        assert set(jobs) == {f"schedule:{uid}", "every:retention", "resync"}
        wall = datetime.now(UTC)
        nxt = jobs[f"schedule:{uid}"]
        assert (
            nxt is not None
            and (nxt.hour, nxt.minute) == (10, 0)
            and wall < nxt <= wall + timedelta(days=1)
        )
        other = add(engine, doc("schedule.interval", {"every": "1h"}, slug="other"))
        engine.refresh(None, uid)
        scheduler.sync()
        assert set(scheduler._driver.jobs()) == {f"schedule:{other}", "every:retention", "resync"}
    finally:
        await scheduler.stop()
    assert scheduler._driver is None


async def _nothing() -> None:
    return None


def test_the_connector_describes_its_events(registry: Registry) -> None:
    for spec in SCHEDULE.triggers:
        assert spec.kind == "schedule" and spec.payload is not None
        spec.payload.model_validate(spec.sample)
        recipe, _ = validate_document(
            doc(spec.type, {"cron": "@daily"} if spec.type.endswith("cron") else {"every": "1h"}),
            registry,
        )
        assert recipe is not None
        event = Event(
            "evt_dry_run", spec.type, spec.sample, "default", None, "dry-run", "dry-run", T0, T0
        )
        assert dry_run(
            recipe, event, registry, lambda: T0
        ).matched  # dry-runs of a schedule recipe match
