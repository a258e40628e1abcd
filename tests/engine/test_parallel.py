"""``parallel`` steps through the engine: branches running at the same time, the join's output,
per-branch trace rows and idempotency keys, failures (with and without ``fail_fast``),
``continue_on_error``, retries within a branch, cancellation, replay and validation (a restart
mid-step is in ``test_durable_recovery``)."""

from __future__ import annotations

from typing import Any

from engine.authoring.validation import validate_document
from engine.clock import ManualClock
from engine.store.db import Database
from tests.engine.test_durable_support import (
    Probe,
    add,
    fire,
    registry_for,
    run,
    running,
    steps,
    until,
)
from tests.fakes import Recorder


def record(sub_id: str, message: str) -> dict[str, Any]:
    return {"id": sub_id, "use": "test.record", "with": {"message": message}}


def slow(tag: str) -> dict[str, Any]:
    return {"id": "wait", "use": "probe.slow", "with": {"tag": tag, "seconds": 5}}


BAD = {"id": "bad", "use": "probe.fail", "with": {"kind": "permanent", "times": 1}}


def fan(**branches: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "fan", "parallel": branches}


AFTER = record("after", "{{ steps.fan.mail.again.echoed }} / {{ steps.fan.note.say.echoed }}")


def messages(recorder: Recorder) -> list[str]:
    return [c[1]["message"] for c in recorder.calls]


async def test_branches_join_with_their_own_keys_rows_and_outputs(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    step = fan(
        mail=[record("say", "mail {{ product.id }}"), record("again", "{{ steps.say.echoed }}!")],
        note=[record("say", "note")],
    )
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "fanned", "actions": [step, AFTER]})
        [made] = await fire(engine)
        await engine.drain()
        assert run(engine, made).status == "succeeded"
        rows = steps(engine, made)
    assert messages(recorder)[-1] == "mail 1! / note"  # later steps read the join
    assert sorted(messages(recorder)[:3]) == ["mail 1", "mail 1!", "note"]
    keys = {c[1]["message"]: c[2] for c in recorder.calls}
    assert keys["mail 1!"] == f"{made}:fan.mail.again"
    assert keys["note"] == f"{made}:fan.note.say"
    ids = [r.step_id for r in rows]
    assert ids == ["fan", "after", "fan.mail.say", "fan.mail.again", "fan.note.say"]
    branches = {"mail": ["say", "again"], "note": ["say"]}
    assert rows[0].input == {"branches": branches, "fail_fast": False}
    assert rows[0].output is not None
    assert rows[0].output["mail"]["again"]["echoed"] == "mail 1!"
    assert rows[0].output["note"] == {"say": {"echoed": "note", "count": 0}}


async def test_branches_run_at_the_same_time(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    step = fan(mail=[slow("m"), record("say", "m done")], note=[slow("n"), record("say", "n")])
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, {"id": "both", "actions": [step]})
        [made] = await fire(engine)
        await until(lambda: probe.sleeping == 2)  # each started while the other is blocked
        assert sorted(probe.order) == ["m", "n"]
        assert recorder.calls == []
        clock.advance(5)
        await engine.drain()
        assert run(engine, made).status == "succeeded"
    assert probe.most_running == 2
    assert sorted(messages(recorder)) == ["m done", "n"]


async def test_a_failed_branch_fails_the_step_after_the_others_end(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    step = fan(mail=[BAD], note=[slow("n"), record("say", "note")])
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, {"id": "waits", "actions": [step, AFTER]})
        [made] = await fire(engine)
        await until(lambda: probe.sleeping == 1)
        clock.advance(5)
        await engine.drain()
        ended = run(engine, made)
        rows = [(r.step_id, r.status) for r in steps(engine, made)]
    assert ended.status == "failed"
    assert ended.status_reason == "step fan: branch mail, step bad: it broke"
    assert messages(recorder) == ["note"]  # the other branch ran to its end; after did not
    assert rows == [
        ("fan", "failed"),
        ("fan.mail.bad", "failed"),
        ("fan.note.wait", "succeeded"),
        ("fan.note.say", "succeeded"),
    ]


async def test_fail_fast_stops_the_other_branches_at_their_next_step(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    step = fan(mail=[BAD], note=[slow("n"), record("say", "note")]) | {"fail_fast": True}
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, {"id": "fast", "actions": [step]})
        [made] = await fire(engine)
        await until(lambda: probe.sleeping == 1)
        clock.advance(5)
        await engine.drain()
        assert run(engine, made).status == "failed"
        rows = [r.step_id for r in steps(engine, made)]
    assert recorder.calls == []  # the note branch stopped after its step in progress
    assert rows == ["fan", "fan.mail.bad", "fan.note.wait"]


async def test_continue_on_error_lets_a_branch_go_on_and_retries_wait_in_the_branch(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    flaky = {"id": "flaky", "use": "probe.fail", "with": {"kind": "retryable", "times": 1}}
    step = fan(
        mail=[BAD | {"continue_on_error": True}, record("say", "mail")],
        note=[flaky, record("say", "note")],
    )
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "goes-on", "actions": [step]})
        [made] = await fire(engine)
        await until(lambda: clock.sleepers == 1 and len(recorder.calls) == 1)
        assert messages(recorder) == ["mail"]  # the flaky step waits for its retry (10s)
        clock.advance(10)
        await engine.drain()
        assert run(engine, made).status == "succeeded_with_errors"
        rows = {r.step_id: r for r in steps(engine, made)}
    assert sorted(messages(recorder)) == ["mail", "note"]
    assert rows["fan.mail.bad"].status == "failed"
    assert (rows["fan.note.flaky"].status, rows["fan.note.flaky"].attempts) == ("succeeded", 2)
    output = rows["fan"].output
    assert output is not None and output["note"]["flaky"]["attempt"] == 2
    assert "bad" not in output["mail"]


async def test_a_cancelled_run_stops_its_branches_at_their_next_step(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    step = fan(mail=[slow("m"), record("say", "m")], note=[slow("n"), record("say", "n")])
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, {"id": "stop", "actions": [step]})
        [made] = await fire(engine)
        await until(lambda: probe.sleeping == 2)
        changes = await engine.cancel([made], reason="not needed")
        assert changes.changed == {made: "cancelling"}
        clock.advance(5)
        await engine.drain()
        ended = run(engine, made)
        assert (ended.status, ended.status_reason) == ("cancelled", "not needed")
        assert engine.admission.cancel_requests == {}
        rows = [(r.step_id, r.status) for r in steps(engine, made)]
    assert recorder.calls == []
    assert rows == [
        ("fan", "running"),
        ("fan.mail.wait", "succeeded"),
        ("fan.note.wait", "succeeded"),
    ]


async def test_a_replay_from_the_failed_step_carries_over_the_branches_done(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    gate = {"id": "gate", "use": "probe.fail", "with": {"kind": "permanent", "until_fixed": True}}
    step = fan(
        mail=[record("say", "mail"), gate, record("again", "mail 2")], note=[record("say", "note")]
    )
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, {"id": "gated", "actions": [step]})
        [failed] = await fire(engine)
        await engine.drain()
        assert run(engine, failed).status == "failed"
        probe.fixed = True
        made = await engine.replay(failed, from_step="failed")
        await engine.drain()
        assert run(engine, made.run_id).status == "succeeded"
        rows = steps(engine, made.run_id)
    assert sorted(messages(recorder)) == ["mail", "mail 2", "note"]  # nothing done twice
    assert [(r.step_id, r.status) for r in rows] == [
        ("fan", "succeeded"),
        ("fan.mail.say", "succeeded"),
        ("fan.mail.gate", "succeeded"),
        ("fan.mail.again", "succeeded"),
        ("fan.note.say", "succeeded"),
    ]
    assert rows[0].output is not None
    assert rows[0].output["mail"]["say"]["echoed"] == "mail"


def test_validation_names_the_field_of_a_step_a_branch_cannot_hold() -> None:
    registry = registry_for(Probe(), Recorder())
    document: dict[str, Any] = {"id": "v", "name": "v", "trigger": {"type": "probe.event"}}
    wait = {"id": "pause", "use": "core.wait", "with": {"for": "1h"}}
    inner_loop = {"id": "each", "for_each": [1], "steps": [record("say", "x")]}
    inner = fan(a=[record("say", "x")], b=[record("say", "y")])
    step = fan(a=[record("say", "x"), wait], b=[inner_loop], c=[inner])
    recipe, errors = validate_document(document | {"actions": [step]}, registry)
    assert recipe is None
    assert [(e.path, e.message) for e in errors] == [
        (
            "actions[0].parallel.a[1].use",
            "core.wait waits, and the steps of a parallel branch cannot wait: put it before or "
            "after the parallel step",
        ),
        (
            "actions[0].parallel.b[0].for_each",
            "a for_each step cannot be inside a parallel branch (one level only)",
        ),
        (
            "actions[0].parallel.c[0].parallel",
            "a parallel step cannot be inside a parallel branch (one level only)",
        ),
    ]
    loop = {"id": "each", "for_each": [1], "steps": [inner]}
    _, errors = validate_document(document | {"actions": [loop]}, registry)
    assert [(e.path, e.message) for e in errors] == [
        (
            "actions[0].steps[0].parallel",
            "a parallel step cannot be inside a for_each (one level only)",
        )
    ]
    one = fan(a=[record("say", "x")])
    _, errors = validate_document(document | {"actions": [one]}, registry)
    assert [(e.path, e.message) for e in errors] == [
        (
            "actions[0]",
            "value error, a parallel step has 2 to 10 branches (parallel: {name: [steps]}), not 1",
        )
    ]
    bad_use = fan(a=[{"id": "x", "use": "test.nope"}], b=[record("say", "y")])
    _, errors = validate_document(document | {"actions": [bad_use]}, registry)
    assert [e.path for e in errors] == ["actions[0].parallel.a[0].use"]
    good = fan(a=[{"use": "core.log", "with": {"message": "x"}}], b=[record("say", "y")])
    recipe, errors = validate_document(document | {"actions": [good]}, registry)
    assert errors == []
    assert recipe is not None and recipe.actions[0].use == "core.parallel"
    assert recipe.actions[0].parallel is not None
    assert recipe.actions[0].parallel["a"][0].id == "step1"
