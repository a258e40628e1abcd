"""Durable waits: core.wait for a duration or until a rendered time, across restarts, with an
optional re-check of the recipe's conditions on a refreshed payload."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine.clock import ManualClock
from engine.context import Services
from engine.errors import RecipeError, RetryableError
from engine.model.events import Event
from engine.run.waits import Refetchers
from engine.store.db import Database
from tests.engine.test_durable_support import (
    Probe,
    add,
    fire,
    jobs,
    registry_for,
    run,
    running,
    steps,
)
from tests.fakes import Recorder

NOTE = {
    "id": "note",
    "use": "test.record",
    "with": {"message": "level {{ product.inventory_level }}"},
}
FIRST = {"id": "first", "use": "test.record", "with": {"message": "before"}}
LOW = [{"<=": [{"var": "product.inventory_level"}, 0]}]


def stock(level: int, **extra: Any) -> dict[str, Any]:
    return {"product": {"id": 5, "inventory_level": level}, **extra}


async def test_a_wait_is_a_stored_row_and_ends_on_the_clock(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        wait = {"id": "pause", "use": "core.wait", "with": {"for": "3d"}}
        add(engine, {"id": "later", "actions": [FIRST, wait, NOTE]})
        start = clock.now()
        [made] = await fire(engine, stock(0))
        await engine.drain()
        waiting = run(engine, made)
        assert waiting.status == "waiting"
        assert waiting.due_at is not None and waiting.due_at.replace(
            tzinfo=start.tzinfo
        ) == start + timedelta(days=3)
        [job] = jobs(engine)
        assert job.ref == made and job.due_at.replace(tzinfo=start.tzinfo) == start + timedelta(
            days=3
        )
        trace = steps(engine, made)
        assert [s.status for s in trace] == ["succeeded", "waiting"]
        assert trace[1].input == {"for": "3d"}
        assert trace[1].output == {
            "until": (start + timedelta(days=3)).isoformat(),
            "since": start.isoformat(),
            "recheck": False,
        }
        clock.advance(3 * 86_400 - 1)
        await engine.drain()
        assert run(engine, made).status == "waiting"
        clock.advance(1)
        await engine.drain()
        done = run(engine, made)
        assert done.status == "succeeded"
        trace = steps(engine, made)
        assert [s.status for s in trace] == ["succeeded", "succeeded", "succeeded"]
        assert trace[1].output is not None and trace[1].output["waited_s"] == 3 * 86_400
        assert [c[1]["message"] for c in recorder.calls] == ["before", "level 0"]
    assert jobs(engine) == []


async def test_wait_until_a_rendered_time(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        wait = {"use": "core.wait", "with": {"until": "{{ release }}"}}
        add(engine, {"id": "release", "actions": [wait, NOTE]})
        release = clock.now() + timedelta(hours=5)
        [made] = await fire(engine, stock(0, release=release.isoformat()))
        [past] = await fire(
            engine, stock(0, release=(clock.now() - timedelta(hours=1)).isoformat())
        )
        await engine.drain()
        assert run(engine, made).status == "waiting"
        assert run(engine, past).status == "succeeded"  # a time already gone does not wait
        clock.set(release)
        await engine.drain()
        assert run(engine, made).status == "succeeded"


async def test_a_wait_survives_a_restart(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    registry = registry_for(Probe(), recorder)
    wait = {"use": "core.wait", "with": {"for": "90d"}}
    async with running(db, registry, clock) as first:
        add(first, {"id": "long", "actions": [FIRST, wait, NOTE]})
        [made] = await fire(first, stock(0))
        await first.drain()
        assert run(first, made).status == "waiting"
    clock.advance(45 * 86_400)
    async with running(db, registry, clock) as second:  # a new process: the wait is a row
        await second.drain()
        assert run(second, made).status == "waiting"
        clock.advance(45 * 86_400)
        await second.drain()
        assert run(second, made).status == "succeeded"
    assert [c[1]["message"] for c in recorder.calls] == ["before", "level 0"]


async def test_waits_longer_than_90_days_are_refused(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        with pytest.raises(RecipeError, match="a wait lasts from 0 to 90 days"):
            add(
                engine,
                {"id": "too-long", "actions": [{"use": "core.wait", "with": {"for": "91d"}}]},
            )
        add(
            engine,
            {
                "id": "rendered",
                "actions": [{"use": "core.wait", "with": {"for": "{{ wait }}"}}, NOTE],
            },
        )
        until = {"use": "core.wait", "with": {"until": "{{ later }}"}}
        add(engine, {"id": "until", "trigger": {"type": "custom.later"}, "actions": [until, NOTE]})
        [rendered] = await fire(engine, stock(0, wait="91d"))
        later = (clock.now() + timedelta(days=100)).isoformat()
        [far] = await fire(engine, stock(0, later=later), type_="custom.later")
        await engine.drain()
        assert run(engine, rendered).status == "failed"
        assert "a wait lasts from 0 to 90 days" in (run(engine, rendered).status_reason or "")
        assert run(engine, far).status == "failed"
        assert "waits are limited to 90 days" in (run(engine, far).status_reason or "")
        assert recorder.calls == []


def refetch(levels: dict[int, int | None]) -> Services:
    async def product(event: Event) -> dict[str, Any] | None:
        level = levels[event.payload["product"]["id"]]
        if level is None:
            return None
        return {**event.payload, "product": {**event.payload["product"], "inventory_level": level}}

    fetchers = Refetchers()
    fetchers.add("probe.*", product)
    services = Services()
    services.add(fetchers)
    return services


async def test_recheck_ends_the_run_skipped_when_a_condition_no_longer_holds(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    levels: dict[int, int | None] = {5: 0}
    services = refetch(levels)
    async with running(db, registry_for(Probe(), recorder), clock, services=services) as engine:
        wait = {"id": "pause", "use": "core.wait", "with": {"for": "2h", "recheck": True}}
        add(engine, {"id": "still-out", "conditions": LOW, "actions": [wait, NOTE]})
        [made] = await fire(engine, stock(0))
        await engine.drain()
        levels[5] = 12  # restocked during the wait
        clock.advance(7200)
        await engine.drain()
        skipped = run(engine, made)
        assert skipped.status == "skipped"
        assert skipped.status_reason is not None
        assert skipped.status_reason.startswith(
            "recheck after the wait: condition 0 no longer holds"
        )
        trace = steps(engine, made)
        assert [s.status for s in trace] == ["succeeded"]
        assert trace[0].output is not None and trace[0].output["recheck"]["passed"] is False
        assert trace[0].output["recheck"]["detail"]["condition"] == 0
        assert recorder.calls == []


async def test_recheck_passes_and_later_steps_see_the_refreshed_payload(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    levels: dict[int, int | None] = {5: -2}
    services = refetch(levels)
    async with running(db, registry_for(Probe(), recorder), clock, services=services) as engine:
        wait = {"use": "core.wait", "with": {"for": "1h", "recheck": True}}
        add(
            engine,
            {
                "id": "still-out",
                "conditions": LOW,
                "actions": [
                    wait,
                    NOTE,
                    {"use": "core.wait", "with": {"for": "1h"}},
                    NOTE | {"id": "again"},
                ],
            },
        )
        [made] = await fire(engine, stock(0))
        await engine.drain()
        clock.advance(3600)
        await engine.drain()
        assert run(engine, made).status == "waiting"
    async with running(db, registry_for(Probe(), recorder), clock, services=services) as engine:
        clock.advance(3600)  # the refreshed payload outlives a restart
        await engine.drain()
        assert run(engine, made).status == "succeeded"
    assert [c[1]["message"] for c in recorder.calls] == ["level -2", "level -2"]


async def test_recheck_of_a_resource_that_is_gone(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    levels: dict[int, int | None] = {5: None}
    async with running(
        db, registry_for(Probe(), recorder), clock, services=refetch(levels)
    ) as engine:
        add(
            engine,
            {
                "id": "gone",
                "actions": [{"use": "core.wait", "with": {"for": "1h", "recheck": True}}, NOTE],
            },
        )
        [made] = await fire(engine, stock(0))
        await engine.drain()
        clock.advance(3600)
        await engine.drain()
        assert run(engine, made).status == "skipped"
        assert (
            run(engine, made).status_reason
            == "recheck after the wait: the resource no longer exists"
        )


async def test_recheck_without_a_refetcher_uses_the_stored_payload(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(
            engine,
            {
                "id": "plain",
                "conditions": LOW,
                "actions": [{"use": "core.wait", "with": {"for": "1h", "recheck": True}}, NOTE],
            },
        )
        [made] = await fire(engine, stock(0))
        await engine.drain()
        clock.advance(3600)
        await engine.drain()
        assert run(engine, made).status == "succeeded"
        assert steps(engine, made)[0].output["recheck"] == {"passed": True, "refreshed": False}  # type: ignore[index]


async def test_a_failing_refetch_is_retried_under_the_step_policy(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    calls = []

    async def flaky(event: Event) -> dict[str, Any] | None:
        calls.append(clock.now())
        if len(calls) < 3:
            raise RetryableError("store unreachable")
        return event.payload

    fetchers = Refetchers()
    fetchers.add("probe.event", flaky)
    services = Services()
    services.add(fetchers)
    async with running(db, registry_for(Probe(), recorder), clock, services=services) as engine:
        wait = {
            "use": "core.wait",
            "with": {"for": "1h", "recheck": True},
            "retry": {"tries": 3, "backoff": 60, "jitter": 0},
        }
        add(engine, {"id": "flaky", "conditions": LOW, "actions": [wait, NOTE]})
        [made] = await fire(engine, stock(0))
        await engine.drain()
        clock.advance(3600)
        await engine.drain()
        assert run(engine, made).status == "retrying"
        assert steps(engine, made)[0].status == "waiting"  # the wait's own row stays
        for _ in range(2):
            clock.advance(120)
            await engine.drain()
        assert len(calls) == 3
        assert run(engine, made).status == "succeeded"
        assert [c[1]["message"] for c in recorder.calls] == ["level 0"]


async def test_cancelling_a_waiting_run(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(
            engine, {"id": "pause", "actions": [{"use": "core.wait", "with": {"for": "30d"}}, NOTE]}
        )
        [made] = await fire(engine, stock(0))
        await engine.drain()
        changes = await engine.cancel([made], reason="no longer needed")
        assert changes.changed == {made: "cancelled"}
        clock.advance(30 * 86_400)
        await engine.drain()
        assert run(engine, made).status == "cancelled"
        assert run(engine, made).status_reason == "no longer needed"
        assert recorder.calls == []
    assert jobs(engine) == []
