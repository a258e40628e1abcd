"""``core.call_recipe`` through the engine: the caller parks ``waiting`` until the called run
ends (woken by that end, not by polling), gets its result, fails with it, gives up at its
timeout, refuses loops, cancels what it waits for, and starts one called run however often
its step runs (restarts are in ``test_durable_recovery``)."""

from __future__ import annotations

from typing import Any

from engine.clock import ManualClock
from engine.store.db import Database
from tests.engine.test_durable_support import (
    Probe,
    add,
    fire,
    registry_for,
    run,
    running,
    runs,
    settled,
    steps,
)
from tests.fakes import Recorder

CALLED = {"type": "sous.recipe.called"}


def call(recipe: str = "callee", **with_: Any) -> dict[str, Any]:
    return {
        "id": "call",
        "use": "core.call_recipe",
        "with": {"recipe": recipe, "input": {"product": "{{ product }}"}, **with_},
    }


AFTER = {
    "id": "after",
    "use": "test.record",
    "with": {"message": "{{ steps.call.status }} {{ steps.call.result.slow.tag }}"},
}
SLOW = {"id": "slow", "use": "probe.slow", "with": {"tag": "t{{ product.id }}", "seconds": 60}}


def callee(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"id": "callee", "trigger": CALLED, "actions": list(actions) or [SLOW]}


async def test_the_caller_waits_and_is_woken_by_the_called_runs_end(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        callee_uid = add(engine, callee())
        add(engine, {"id": "caller", "actions": [call(timeout="1h"), AFTER]})
        [made] = await fire(engine, {"product": {"id": 7}})
        await settled(engine, probe)
        assert run(engine, made).status == "waiting"
        [called] = runs(engine, callee_uid)
        waiting = steps(engine, made)[0]
        assert waiting.status == "waiting"
        assert waiting.output is not None
        assert waiting.output["call"] == {"run_id": called.id, "recipe": "callee"}
        clock.advance(60)  # the called run ends long before the caller's deadline
        await engine.drain()
        assert run(engine, called.id).status == "succeeded"
        assert run(engine, made).status == "succeeded"
        out = steps(engine, made)[0].output
    assert [c[1]["message"] for c in recorder.calls] == ["succeeded t7"]
    assert out is not None
    assert out["run_id"] == called.id
    assert out["result"] == {"slow": {"tag": "t7"}}


async def test_the_called_run_sees_its_input_and_caller(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    said = {
        "id": "say",
        "use": "test.record",
        "with": {"message": "{{ product.id }} {{ caller.recipe }}"},
    }
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, callee(said))
        add(engine, {"id": "caller", "actions": [call(wait=False)]})
        [made] = await fire(engine, {"product": {"id": 3}})
        await engine.drain()
        out = steps(engine, made)[0].output
    assert [c[1]["message"] for c in recorder.calls] == ["3 caller"]
    assert out is not None
    assert out["status"] == "queued"
    assert "result" not in out


async def test_a_failed_called_run_fails_the_calling_step(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    broken = {"id": "boom", "use": "probe.fail", "with": {"kind": "permanent", "message": "no"}}
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, callee(broken))
        add(engine, {"id": "caller", "actions": [call(), AFTER]})
        tolerant = [call() | {"continue_on_error": True}, SLOW | {"with": {"seconds": 0}}]
        add(engine, {"id": "tolerant", "actions": tolerant})
        made = await fire(engine)
        await engine.drain()
        failed, tolerated = (run(engine, r) for r in made)
    assert failed.status == "failed"
    assert failed.status_reason is not None
    assert "ended failed: step boom: no" in failed.status_reason
    assert tolerated.status == "succeeded_with_errors"


async def test_a_caller_gives_up_at_its_timeout_and_cancels_the_called_run(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    slower = SLOW | {"with": {"tag": "x", "seconds": 7200}}
    async with running(db, registry_for(probe, recorder), clock) as engine:
        callee_uid = add(engine, callee(slower, SLOW | {"id": "two"}))
        add(engine, {"id": "caller", "actions": [call(timeout="10m"), AFTER]})
        [made] = await fire(engine)
        await settled(engine, probe)
        clock.advance(600)
        await settled(engine, probe)
        [called] = runs(engine, callee_uid)
        assert run(engine, made).status == "failed"
        reason = run(engine, made).status_reason
        assert reason is not None
        assert f"the called run {called.id} of callee did not end within 10m" in reason
        assert probe.sleeping == 1  # the called run is cancelled at its next step boundary
        clock.advance(7200)
        await engine.drain()
        assert run(engine, called.id).status == "cancelled"
    assert recorder.calls == []


async def test_loops_and_deep_chains_are_refused_with_the_chain(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "self", "trigger": CALLED, "actions": [call("self")]})
        add(engine, {"id": "starter", "actions": [call("self")]})
        for n in range(7):  # chain0 calls chain1 … calls chain6
            doc = {"id": f"chain{n}", "actions": [call(f"chain{n + 1}")]}
            add(engine, doc | ({"trigger": CALLED} if n else {}))
        add(engine, {"id": "chain7", "trigger": CALLED, "actions": [SLOW]})
        await fire(engine)
        await engine.drain()
        reasons = {r.status_reason for r in runs(engine) if r.status == "failed"}
    assert any(
        "call loop refused: self is already in the chain starter → self → self" in (r or "")
        for r in reasons
    )
    deep = "calls nest deeper than 5: chain0 → chain1 → chain2 → chain3 → chain4 → chain5 → chain6"
    assert any(deep in (r or "") for r in reasons)


async def test_a_missing_or_uncallable_recipe_fails_the_step_clearly(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "plain", "actions": [SLOW]}, workspace="other")
        add(engine, {"id": "caller", "actions": [call("nope")]})
        add(engine, {"id": "caller2", "actions": [call("caller")]})
        add(engine, {"id": "elsewhere", "trigger": CALLED, "actions": [SLOW]}, workspace="other")
        add(engine, {"id": "caller3", "actions": [call("elsewhere")]})
        made = await fire(engine)
        await engine.drain()
        reasons = [run(engine, r).status_reason or "" for r in made]
    assert "no recipe 'nope' in this workspace to call" in reasons[0]
    assert (
        "its trigger is probe.event; a called recipe's trigger is sous.recipe.called"
        in (reasons[1])
    )
    assert "no recipe 'elsewhere' in this workspace to call" in reasons[2]


async def test_cancelling_the_caller_cancels_the_run_it_waits_for(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        callee_uid = add(engine, callee(SLOW, SLOW | {"id": "two"}))
        add(engine, {"id": "caller", "actions": [call(), AFTER]})
        [made] = await fire(engine)
        await settled(engine, probe)
        [called] = runs(engine, callee_uid)
        changes = await engine.cancel([made])
        assert changes.changed == {made: "cancelled"}
        clock.advance(60)
        await engine.drain()
        assert run(engine, made).status == "cancelled"
        assert run(engine, called.id).status == "cancelled"
        assert run(engine, called.id).status_reason == "the run that called it was cancelled"
    assert recorder.calls == []


async def test_cancelling_the_called_run_wakes_and_fails_its_caller(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        callee_uid = add(
            engine, {"id": "callee", "trigger": CALLED, "actions": [SLOW, SLOW | {"id": "two"}]}
        )
        add(engine, {"id": "caller", "actions": [call(timeout="3d"), AFTER]})
        [made] = await fire(engine)
        await settled(engine, probe)
        [called] = runs(engine, callee_uid)
        await engine.cancel([called.id])
        clock.advance(60)
        await settled(engine, probe)
        assert run(engine, called.id).status == "cancelled"
        assert run(engine, made).status == "failed"  # at once, not after 3 days
    assert recorder.calls == []
