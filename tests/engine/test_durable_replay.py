"""Replay: a failed run again, from the start or from the failed step, with the version it ran
or the current one; many at once by filter. Completed writes are not repeated."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.clock import ManualClock
from engine.errors import ConflictError, NotFoundError
from engine.ops.replay import RunFilter
from engine.store.db import Database
from tests.engine.test_durable_support import (
    Probe,
    add,
    events,
    fire,
    match_of,
    registry_for,
    run,
    running,
    steps,
)
from tests.fakes import Recorder

WRITE = {"id": "write", "use": "probe.write", "with": {"tag": "{{ product.id }}-written"}}
FLAKY = {"id": "flaky", "use": "probe.fail", "with": {"kind": "permanent", "per": "step"}}
NOTE = {"id": "note", "use": "test.record", "with": {"message": "after {{ steps.write.tag }}"}}
RECIPE = {"id": "sync", "actions": [WRITE, FLAKY, NOTE]}


async def test_replay_from_the_failed_step_keeps_completed_writes(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        uid = add(engine, RECIPE)
        [failed] = await fire(engine)
        await engine.drain()
        assert run(engine, failed).status == "failed"
        made = await engine.replay(failed, from_step="failed")
        assert (made.from_step, made.recipe_version, made.replay_of) == (1, 1, failed)
        await engine.drain()
        again = run(engine, made.run_id)
        assert again.status == "succeeded"
        assert again.status_reason is None and again.context == {
            "replay_of": failed,
            "from_step": 1,
        }
        assert [s.status for s in steps(engine, made.run_id)] == [
            "succeeded",
            "succeeded",
            "succeeded",
        ]
        assert [t for _, t in probe.calls] == ["1-written", "fail", "fail"]  # the write ran once
        assert [c[1]["message"] for c in recorder.calls] == ["after 1-written"]  # copied output
        flaky_keys = [k for k, t in probe.calls if t == "fail"]
        assert flaky_keys == [f"{failed}:flaky", f"{made.run_id}:flaky"]  # a new run, new keys
        [event] = [e for e in events(engine, "probe.event") if e.id == made.event_id]
        assert (event.source, event.target_recipe, event.dedup_key) == (
            "replay",
            uid,
            f"replay:{failed}:1",
        )
        assert match_of(engine, made.run_id).stage == "replay"


async def test_replay_from_the_start_with_the_current_version(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, RECIPE)
        [failed] = await fire(engine)
        await engine.drain()
        put = NOTE | {"with": {"message": "after {{ steps.put.tag }}"}}
        fixed = {
            **RECIPE,
            "name": "sync",
            "trigger": {"type": "probe.event"},
            "actions": [WRITE | {"id": "put"}, put],
        }
        engine.refresh(engine.recipes.update("default", "sync", fixed, expected_version=1))
        current = await engine.replay(failed, version="current")
        original = await engine.replay(failed)
        assert (current.recipe_version, current.from_step) == (2, 0)
        assert original.recipe_version == 1
        await engine.drain()
        assert run(engine, current.run_id).status == "succeeded"
        assert run(engine, original.run_id).status == "succeeded"  # the failure was once only
        assert [len(steps(engine, r.run_id)) for r in (current, original)] == [2, 3]
        written = [k for k, t in probe.calls if t == "1-written"]
        assert written == [f"{failed}:write", f"{current.run_id}:put", f"{original.run_id}:write"]
        with pytest.raises(ConflictError, match="steps before the failed one changed"):
            await engine.replay(failed, from_step="failed", version="current")


async def test_replay_refuses_what_it_cannot_do(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "fine", "actions": [NOTE | {"with": {"message": "ok"}}]})
        [ok] = await fire(engine)
        await engine.drain()
        with pytest.raises(ConflictError, match="no failed step"):
            await engine.replay(ok, from_step="failed")
        with pytest.raises(NotFoundError):
            await engine.replay("run_missing")
        with pytest.raises(NotFoundError):
            await engine.replay(ok, workspace="someone-else")
        with pytest.raises(ValueError, match="from_step"):
            await engine.replay(ok, from_step="middle")


async def test_replay_many_by_recipe_status_and_time(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        uid = add(
            engine,
            {
                "id": "often",
                "actions": [FLAKY | {"with": {"kind": "permanent", "until_fixed": True}}],
            },
        )
        add(engine, {"id": "other", "actions": [FLAKY | {"id": "other"}]})
        start = clock.now()
        made = []
        for n in range(4):
            made.append(await fire(engine, {"product": {"id": n}}))
            clock.advance(600)
        await engine.drain()
        mine = [r for pair in made for r in pair if run(engine, r).recipe_uid == uid]
        assert all(run(engine, r).status == "failed" for r in mine)
        probe.fixed = True
        which = RunFilter(
            workspace="default",
            recipe="often",
            since=start + timedelta(minutes=5),
            until=start + timedelta(minutes=25),
        )
        report = await engine.replay_many(which, from_step="failed")
        assert sorted(r.replay_of for r in report.replayed) == sorted(mine[1:3])
        assert report.refused == {}
        await engine.drain()
        assert all(run(engine, r.run_id).status == "succeeded" for r in report.replayed)
        by_uid = await engine.replay_many(
            RunFilter(recipe=uid, status=["failed", "succeeded"], limit=2)
        )
        assert [r.replay_of for r in by_uid.replayed] == mine[:2]
