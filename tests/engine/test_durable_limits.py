"""Flood protection (runs held beyond a recipe's limit per window, released or discarded) and
auto-disable (a recipe that keeps failing is switched off and its owners told)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine import EngineSettings
from engine.clock import ManualClock
from engine.model.limits import AutoDisable, FloodLimit
from engine.model.recipe import Recipe
from engine.store.db import Database
from tests.engine.test_durable_support import (
    Probe,
    add,
    events,
    fire,
    jobs,
    match_of,
    registry_for,
    run,
    running,
    runs,
)
from tests.fakes import Recorder

NOTE = {"id": "note", "use": "test.record", "with": {"message": "n{{ n }}"}}
TELL = {"id": "tell", "use": "test.record", "with": {"message": "{{ recipe.id }}: {{ reason }}"}}


def test_limits_parse_durations_and_refuse_nonsense() -> None:
    doc = {"id": "r", "name": "r", "trigger": {"type": "x.y"}, "actions": [{"use": "core.set"}]}
    recipe = Recipe.model_validate(
        {**doc, "flood": {"max_runs": 100, "per": "1m"}, "auto_disable": False}
    )
    assert recipe.flood == FloodLimit(max_runs=100, per=60)
    assert recipe.document()["flood"] == {"max_runs": 100, "per": "1m"}
    assert recipe.auto_disable is False
    with pytest.raises(ValidationError, match="flood window"):
        Recipe.model_validate({**doc, "flood": {"per": "2d"}})
    assert AutoDisable(window="90m").model_dump(mode="json")["window"] == "90m"


async def test_runs_beyond_the_flood_limit_are_held_and_owners_told_once(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        uid = add(engine, {"id": "noisy", "flood": {"max_runs": 3, "per": "1m"}, "actions": [NOTE]})
        add(engine, {"id": "owners", "trigger": {"type": "sous.recipe.flooded"}, "actions": [TELL]})
        made = [(await fire(engine, {"n": n}))[0] for n in range(6)]
        await engine.drain()
        statuses = [run(engine, r).status for r in made]
        assert statuses == ["succeeded"] * 3 + ["held"] * 3
        held = made[3:]
        assert (
            run(engine, held[0]).status_reason
            == "flood: more than 3 runs in 1m; release or discard it"
        )
        assert match_of(engine, held[0]).stage == "flood"
        assert {j.ref for j in jobs(engine)}.isdisjoint(held)  # held runs have no job
        [notice] = events(engine, "sous.recipe.flooded")
        assert notice.payload["recipe"]["uid"] == uid
        assert notice.payload["reason"] == "more than 3 runs in 1m"
        told = [c[1]["message"] for c in recorder.calls if c[1]["message"].startswith("noisy")]
        assert told == ["noisy: more than 3 runs in 1m"]
        released = await engine.release(held[:2])
        discarded = await engine.discard([held[2], made[0]])
        assert released.changed == {held[0]: "queued", held[1]: "queued"}
        assert discarded.changed == {held[2]: "discarded"}
        assert "succeeded" in discarded.refused[made[0]]
        await engine.drain()
        assert [run(engine, r).status for r in held] == ["succeeded", "succeeded", "discarded"]
        clock.advance(60)  # a new window: runs start again, and a new flood is told again
        later = [(await fire(engine, {"n": n}))[0] for n in range(4)]
        await engine.drain()
        assert [run(engine, r).status for r in later] == ["succeeded"] * 3 + ["held"]
        assert len(events(engine, "sous.recipe.flooded")) == 2


async def test_the_engine_default_flood_limit_and_turning_it_off(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    settings = EngineSettings(flood=FloodLimit(max_runs=2, per=60))
    async with running(db, registry_for(Probe(), recorder), clock, settings=settings) as engine:
        add(engine, {"id": "default", "actions": [NOTE]})
        add(engine, {"id": "unlimited", "flood": False, "actions": [NOTE | {"id": "other"}]})
        for n in range(3):
            await fire(engine, {"n": n})
        await engine.drain()
        statuses = {
            uid: [r.status for r in runs(engine, uid)]
            for uid in {r.recipe_uid for r in runs(engine)}
        }
        assert sorted(statuses.values()) == [["succeeded"] * 2 + ["held"], ["succeeded"] * 3]


async def test_a_recipe_that_keeps_failing_is_switched_off(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    rule = {"failure_share": 0.75, "window": "1h", "min_runs": 4}
    fail = {"id": "fail", "use": "probe.fail", "with": {"kind": "permanent", "until_fixed": True}}
    async with running(db, registry_for(probe, recorder), clock) as engine:
        uid = add(engine, {"id": "broken", "auto_disable": rule, "actions": [fail]})
        add(
            engine, {"id": "owners", "trigger": {"type": "sous.recipe.disabled"}, "actions": [TELL]}
        )
        probe.fixed = True
        await fire(engine)  # one success within the window
        await engine.drain()
        probe.fixed = False
        for _ in range(2):
            await fire(engine)
            await engine.drain()
        assert engine.recipes.get("default", "broken").enabled  # 2 of 3 failed: not yet
        await fire(engine)
        await engine.drain()  # 3 of 4 failed
        stored = engine.recipes.get("default", "broken")
        assert not stored.enabled
        assert stored.disabled_reason == "auto-disabled: 3 of the last 4 runs within 1h failed"
        assert uid not in engine.index.by_uid
        [notice] = events(engine, "sous.recipe.disabled")
        assert notice.payload["reason"] == stored.disabled_reason
        assert notice.payload["details"] == {
            "runs": 4,
            "failed": 3,
            "window": "1h",
            "failure_share": 0.75,
        }
        assert [c[1]["message"] for c in recorder.calls] == [f"broken: {stored.disabled_reason}"]
        assert await fire(engine) == []  # no more runs


async def test_failures_outside_the_window_or_turned_off_do_not_disable(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    fail = {"id": "fail", "use": "probe.fail", "with": {"kind": "permanent", "until_fixed": True}}
    settings = EngineSettings(auto_disable=AutoDisable(failure_share=0.5, window=600, min_runs=3))
    async with running(db, registry_for(probe, recorder), clock, settings=settings) as engine:
        add(engine, {"id": "slowly", "actions": [fail]})
        add(
            engine,
            {
                "id": "exempt",
                "auto_disable": False,
                "trigger": {"type": "custom.x"},
                "actions": [fail],
            },
        )
        for _ in range(4):
            await fire(engine)
            await fire(engine, type_="custom.x")
            await engine.drain()
            clock.advance(301)  # at most two failures within any 10 minutes
        assert engine.recipes.get("default", "slowly").enabled
        assert engine.recipes.get("default", "exempt").enabled
        await fire(engine)
        await fire(engine)
        await engine.drain()
        assert not engine.recipes.get("default", "slowly").enabled  # three within 10 minutes now
        assert engine.recipes.get("default", "exempt").enabled
