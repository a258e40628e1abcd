"""Run modes and concurrency keys: slow actions on a manual clock show what overlaps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import EngineSettings
from engine.clock import ManualClock
from engine.ingest.inbox import received
from engine.model.events import NewEvent
from engine.model.run import RunState
from engine.queue.base import NewJob
from engine.store.db import Database
from tests.engine.test_durable_support import (
    Probe,
    add,
    fire,
    jobs,
    match_of,
    registry_for,
    run,
    running,
    runs,
    settled,
    steps,
)
from tests.fakes import Recorder

SLOW = {"use": "probe.slow", "with": {"key": "{{ product.id }}", "tag": "{{ n }}"}}
NOTE = {"id": "note", "use": "test.record", "with": {"message": "{{ n }}"}}


def product(pid: int, n: int) -> dict[str, Any]:
    return {"product": {"id": pid}, "n": f"{pid}-{n}"}


async def finish(engine, clock: ManualClock, probe: Probe, rounds: int = 50) -> None:
    for _ in range(rounds):
        await settled(engine, probe)
        if not probe.sleeping:
            break
        clock.advance(5)
    await engine.drain()


async def test_runs_for_the_same_key_never_overlap(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        uid = add(engine, {"id": "keyed", "concurrency_key": "{{ product.id }}", "actions": [SLOW]})
        for n in range(3):
            for pid in (1, 2, 3):
                await fire(engine, product(pid, n))
        await finish(engine, clock, probe)
        assert [r.status for r in runs(engine, uid)] == ["succeeded"] * 9
        assert dict(probe.most) == {"1": 1, "2": 1, "3": 1}  # never two runs of one product
        assert probe.most_running == 3  # different products side by side
        for pid in (1, 2, 3):  # and each product's runs in the order their events came
            assert [t for t in probe.order if t.startswith(f"{pid}-")] == [
                f"{pid}-{n}" for n in range(3)
            ]
    assert jobs(engine) == []


async def test_parallel_runs_up_to_max_runs_and_the_rest_wait(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        uid = add(engine, {"id": "wide", "mode": "parallel", "max_runs": 2, "actions": [SLOW]})
        made = [(await fire(engine, product(n, 0)))[0] for n in range(5)]
        await settled(engine, probe)
        assert probe.running == 2
        assert engine.runner.executing == set(made[:2])
        assert len(jobs(engine)) == 2  # the waiting ones have no job until their turn
        await finish(engine, clock, probe)
        assert [r.status for r in runs(engine, uid)] == ["succeeded"] * 5
        assert probe.most_running == 2


async def test_single_records_the_trigger_it_skips(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, {"id": "one", "mode": "single", "actions": [SLOW, NOTE]})
        [first] = await fire(engine, product(1, 0))
        await settled(engine, probe)
        [second] = await fire(engine, product(1, 1))
        skipped = run(engine, second)
        assert skipped.status == "skipped"
        assert skipped.status_reason == f"mode single: run {first} of this recipe is still going"
        assert skipped.finished_at is not None
        decision = match_of(engine, second)
        assert decision.matched and decision.stage == "mode"
        await finish(engine, clock, probe)
        [third] = await fire(engine, product(1, 2))
        await finish(engine, clock, probe)
        assert run(engine, first).status == "succeeded"
        assert run(engine, third).status == "succeeded"
        assert [c[1]["message"] for c in recorder.calls] == ["1-0", "1-2"]


async def test_restart_cancels_the_running_one_at_its_next_step(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, {"id": "again", "mode": "restart", "actions": [SLOW, NOTE]})
        [old] = await fire(engine, product(1, 0))
        await settled(engine, probe)
        [new] = await fire(engine, product(1, 1))
        await settled(engine, probe)
        assert engine.runner.executing == {old}  # still in its slow step
        assert run(engine, new).status == "queued"
        assert probe.running == 1
        await finish(engine, clock, probe)
        cancelled = run(engine, old)
        assert cancelled.status == "cancelled"
        assert cancelled.status_reason == f"restart: superseded by run {new}"
        assert [s.status for s in steps(engine, old)] == ["succeeded"]  # stopped at the boundary
        assert run(engine, new).status == "succeeded"
        assert [c[1]["message"] for c in recorder.calls] == ["1-1"]
        assert probe.most_running == 1
        assert engine.admission.cancel_requests == {}
    assert jobs(engine) == []


async def test_restart_cancels_waiting_and_queued_runs_at_once(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        wait = {"id": "pause", "use": "core.wait", "with": {"for": "1d"}}
        add(engine, {"id": "again", "mode": "restart", "actions": [wait, NOTE]})
        [old] = await fire(engine, product(1, 0))
        await engine.drain()
        assert run(engine, old).status == "waiting"
        [new] = await fire(engine, product(1, 1))
        await engine.drain()
        assert run(engine, old).status == "cancelled"
        assert run(engine, new).status == "waiting"
        clock.advance(86_400)
        await engine.drain()
        assert run(engine, new).status == "succeeded"
        assert run(engine, old).status == "cancelled"
        assert [c[1]["message"] for c in recorder.calls] == ["1-1"]
        assert engine.admission.cancel_requests == {}  # the stale job ended the request
    assert jobs(engine) == []


async def test_queued_runs_one_at_a_time_in_order_and_holds_beyond_max(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, {"id": "line", "mode": "queued", "max_runs": 2, "actions": [SLOW]})
        made = [(await fire(engine, product(1, n)))[0] for n in range(4)]
        held = run(engine, made[3])
        assert held.status == "held"
        assert held.status_reason == "mode queued: 2 runs are already waiting their turn"
        assert held.finished_at is None
        assert match_of(engine, made[3]).stage == "mode"
        await finish(engine, clock, probe)
        assert [run(engine, r).status for r in made] == ["succeeded"] * 3 + ["held"]
        assert probe.order == ["1-0", "1-1", "1-2"] and probe.most_running == 1
        released = await engine.release([made[3]])
        assert released.changed == {made[3]: "queued"}
        await finish(engine, clock, probe)
        assert run(engine, made[3]).status == "succeeded"
        assert probe.order[-1] == "1-3"


async def test_waiting_runs_keep_their_slot(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        wait = {"use": "core.wait", "with": {"for": "1h"}}
        add(engine, {"id": "keyed", "concurrency_key": "{{ product.id }}", "actions": [wait, NOTE]})
        [first] = await fire(engine, product(7, 0))
        [second] = await fire(engine, product(7, 1))
        [other] = await fire(engine, product(8, 0))
        await engine.drain()
        assert [run(engine, r).status for r in (first, second, other)] == [
            "waiting",
            "queued",
            "waiting",
        ]
        clock.advance(3600)
        await engine.drain()
        assert [run(engine, r).status for r in (first, second, other)] == [
            "succeeded",
            "waiting",
            "succeeded",
        ]
        clock.advance(3600)
        await engine.drain()
        assert run(engine, second).status == "succeeded"
        messages = [c[1]["message"] for c in recorder.calls]
        assert sorted(messages[:2]) == ["7-0", "8-0"] and messages[2:] == ["7-1"]


async def test_cancel_through_the_engine(
    db: Database, clock: ManualClock, recorder: Recorder, tmp_path: Path
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock, workers=1) as engine:
        add(engine, {"id": "two", "mode": "parallel", "max_runs": 1, "actions": [SLOW, NOTE]})
        [busy] = await fire(engine, product(1, 0))
        [waiting] = await fire(engine, product(1, 1))
        await settled(engine, probe)
        changes = await engine.cancel([busy, waiting, "run_nope"])
        assert changes.changed == {busy: "cancelling", waiting: "cancelled"}
        assert changes.missing == ["run_nope"]
        again = await engine.cancel([waiting])
        assert "cancelled" in again.refused[waiting]
        await finish(engine, clock, probe)
        assert run(engine, busy).status == "cancelled"
        assert run(engine, busy).status_reason == "cancelled through the API"
        assert recorder.calls == []
        assert engine.admission.cancel_requests == {}
    assert jobs(engine) == []


async def test_a_queued_run_cancelled_before_a_worker_takes_it_never_starts(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    from engine import Engine

    idle = Engine(db, registry_for(probe, recorder), clock=clock, settings=EngineSettings())
    add(idle, {"id": "note", "actions": [NOTE]})
    [made] = await fire(idle, product(1, 0))
    changes = await idle.cancel([made])
    assert changes.changed == {made: "cancelled"}
    await idle.start(workers=1)
    try:
        await idle.drain()
    finally:
        await idle.stop()
    assert run(idle, made).status == "cancelled"
    assert recorder.calls == []
    assert jobs(idle) == []


async def test_a_run_whose_event_was_a_duplicate_never_runs_even_if_its_turn_came(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        uid = add(engine, {"id": "one-by-one", "max_runs": 1, "actions": [SLOW]})
        [first] = await fire(engine, product(1, 0))
        await settled(engine, probe)
        # what a duplicate event leaves when a slot freed before its write found the duplicate:
        # a run (never stored) given the slot, its job enqueued with its state
        ghost = "run_ghost"
        compiled = engine.index.by_uid[uid]
        probe_event = NewEvent("probe.event", {"product": {"id": 1}, "n": "ghost"})
        event = received(probe_event, engine.clock.now())
        state = RunState(ghost, uid, "default", compiled.recipe, event)
        job = NewJob("run", ghost, hint=state)
        assert engine.admission.admit(ghost, uid, compiled.recipe, False, job).verdict == "pending"
        assert [j.ref for j in engine.admission.leave(first)] == [ghost]
        assert engine.admission.forget(ghost) == []  # the ingest is undone
        await engine.enqueue([job])
        await finish(engine, clock, probe)
        assert probe.order == ["1-0"]  # the ghost never ran
        assert [r.id for r in runs(engine)] == [first]
        assert engine.admission.cancel_requests == {}
    assert jobs(engine) == []


async def test_restart_with_several_triggers_keeps_only_the_last(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, {"id": "again", "mode": "restart", "actions": [SLOW, NOTE]})
        [first] = await fire(engine, product(1, 0))
        await settled(engine, probe)
        [second] = await fire(engine, product(1, 1))
        [third] = await fire(engine, product(1, 2))
        assert run(engine, second).status == "cancelled"  # it never started
        assert run(engine, second).status_reason == f"restart: superseded by run {third}"
        await finish(engine, clock, probe)
        assert [run(engine, r).status for r in (first, second, third)] == [
            "cancelled",
            "cancelled",
            "succeeded",
        ]
        assert probe.order == ["1-0", "1-2"]
        assert [c[1]["message"] for c in recorder.calls] == ["1-2"]
        assert engine.admission.cancel_requests == {}
    assert jobs(engine) == []
