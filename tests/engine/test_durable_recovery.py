"""Crash recovery: a new process picks up every unfinished run from its last completed step;
a step whose write happened but whose trace did not commit runs again with the same
idempotency key; jobs of dead workers go back to the queue; nothing runs twice."""

from __future__ import annotations

import asyncio

import pytest

from engine.clock import ManualClock
from engine.model.events import NewEvent
from engine.queue.base import Job, NewJob
from engine.store.db import Database, Tx
from tests.engine.test_durable_support import (
    Probe,
    add,
    fire,
    jobs,
    registry_for,
    run,
    running,
    runs,
    settled,
    steps,
    until,
)
from tests.engine.test_for_each import LINES, loop
from tests.fakes import Recorder

FIRST = {"id": "first", "use": "test.record", "with": {"message": "first {{ n }}"}}
WRITE = {"id": "write", "use": "probe.write", "with": {"tag": "w{{ n }}"}}
LAST = {"id": "last", "use": "test.record", "with": {"message": "last {{ steps.write.tag }}"}}


async def test_a_write_whose_trace_did_not_commit_runs_again_with_the_same_key(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe(hang={"w1"})
    registry = registry_for(probe, recorder)
    async with running(db, registry, clock) as first:
        add(first, {"id": "sync", "actions": [FIRST, WRITE, LAST]})
        [made] = await fire(first, {"n": 1})
        await until(lambda: probe.sleeping == 1)  # the write is made; the process dies now
        assert run(first, made).status == "running"
        assert [s.step_id for s in steps(first, made)] == ["first"]
    probe.hang.clear()
    async with running(db, registry, clock) as second:
        await second.drain()
        assert run(second, made).status == "succeeded"
    assert probe.calls == [(f"{made}:write", "w1"), (f"{made}:write", "w1")]  # same key twice
    assert list(probe.applied) == [f"{made}:write"]  # applied once by the idempotent remote
    assert [c[1]["message"] for c in recorder.calls] == ["first 1", "last w1"]  # no step twice
    assert jobs(second) == []


async def test_every_unfinished_run_resumes_after_a_crash(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    registry = registry_for(probe, recorder)
    slow = {"id": "slow", "use": "probe.slow", "with": {"tag": "t{{ n }}"}}
    wait = {"id": "wait", "use": "core.wait", "with": {"for": "1h"}}
    flaky = {"id": "flaky", "use": "probe.fail", "with": {"kind": "retryable", "times": 1}}
    async with running(db, registry, clock) as first:
        line_uid = add(
            first,
            {
                "id": "line",
                "mode": "queued",
                "max_runs": 5,
                "trigger": {"type": "custom.line"},
                "actions": [slow, FIRST],
            },
        )
        add(first, {"id": "pause", "actions": [wait, FIRST | {"id": "after"}]})
        add(
            first,
            {
                "id": "retry",
                "trigger": {"type": "custom.retry"},
                "actions": [flaky, FIRST | {"id": "then"}],
            },
        )
        line = [(await fire(first, {"n": n}, type_="custom.line"))[0] for n in range(3)]
        [paused] = await fire(first, {"n": 9})
        [retrying] = await fire(first, {"n": 8}, type_="custom.retry")
        await settled(first, probe)
        assert [run(first, r).status for r in (*line, paused, retrying)] == ["queued"] * 3 + [
            "waiting",
            "retrying",
        ]
        assert first.runner.executing == {line[0]}
    # the process died: line[0] mid-step, line[1:] waiting their turn, one waiting, one retrying
    async with running(db, registry, clock) as second:
        assert second.admission.holders(line_uid) == [line[0]]  # slots rebuilt from the tables
        assert second.admission.waiting(line_uid) == line[1:]
        for _ in range(4):
            await settled(second, probe)
            clock.advance(1800)
        await second.drain()
        assert {r.id: r.status for r in runs(second)} == dict.fromkeys(
            (*line, paused, retrying), "succeeded"
        )
    assert probe.order == [
        "t0",
        "t0",
        "t1",
        "t2",
    ]  # line[0]'s step began again; then the others in order
    messages = sorted(c[1]["message"] for c in recorder.calls)
    assert messages == ["first 0", "first 1", "first 2", "first 8", "first 9"]
    assert jobs(second) == []


async def test_a_job_whose_handler_raises_goes_back_to_the_queue(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    seen: list[int] = []
    async with running(db, registry_for(Probe(), recorder), clock) as engine:

        async def flaky(job: Job) -> None:
            seen.append(job.attempts)
            if len(seen) == 1:
                raise RuntimeError("a bug")

            def done(tx: Tx) -> None:
                engine.queue.complete(tx, job)

            await engine.db.writer.write(done)

        engine.handle("test.flaky-handler", flaky)
        await engine.enqueue([NewJob("test.flaky-handler", "x", lock_key="k")])
        await engine.drain()
        assert seen == [0]
        [row] = jobs(engine)
        assert row.attempts == 1  # put back, due later: not held by a dead handler
        await engine.enqueue([NewJob("test.flaky-handler", "y", lock_key="k")])
        clock.advance(5)
        await engine.drain()
        assert sorted(seen) == [0, 0, 1]
        assert jobs(engine) == []


async def test_recovering_again_leaves_jobs_in_progress_alone(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, {"id": "slow", "actions": [{"use": "probe.slow", "with": {"tag": "once"}}]})
        [made] = await fire(engine)
        await settled(engine, probe)
        assert await engine.queue.recover() == 0
        await asyncio.sleep(0)
        assert probe.running == 1
        clock.advance(5)
        await engine.drain()
        assert run(engine, made).status == "succeeded"
        assert probe.order == ["once"]


async def test_a_run_job_whose_worker_fails_goes_back_to_the_queue(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "note", "actions": [FIRST]})
        real = engine.runner.execute
        failures = [RuntimeError("the worker broke")]

        async def broken(job: Job) -> None:
            if failures:
                raise failures.pop()
            await real(job)

        engine.runner.execute = broken  # type: ignore[method-assign]
        [made] = await fire(engine, {"n": 1})
        await engine.drain()
        assert run(engine, made).status == "queued"
        [row] = jobs(engine)
        assert row.attempts == 1
        clock.advance(5)
        await engine.drain()
        assert run(engine, made).status == "succeeded"
        assert [c[1]["message"] for c in recorder.calls] == ["first 1"]


async def test_events_derived_by_a_job_are_stored_with_its_completion_or_not_at_all(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "note", "actions": [FIRST]})
        derived = [
            NewEvent(type="probe.event", payload={"n": n}, dedup_key=f"d{n}") for n in (1, 2)
        ]

        def broken(tx: Tx) -> None:
            raise RuntimeError("the job's own state did not save")

        with pytest.raises(RuntimeError):
            await engine.ingest_many(derived, also=broken)
        assert runs(engine) == [] and engine.admission.stats()["holding"] == 0
        saved: list[str] = []
        results = await engine.ingest_many(derived, also=lambda tx: saved.append("job done"))
        assert [r.duplicate for r in results] == [False, False] and saved == ["job done"]
        again = await engine.ingest_many(derived)  # the job run again derives nothing twice
        assert [r.duplicate for r in again] == [True, True]
        await engine.drain()
        assert [r.status for r in runs(engine)] == ["succeeded", "succeeded"]


async def test_a_restart_mid_list_does_not_do_finished_items_again(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe(hang={"w1"})
    registry = registry_for(probe, recorder)
    write = {"id": "write", "use": "probe.write", "with": {"tag": "w{{ index }}"}}
    async with running(db, registry, clock) as first:
        counted = {
            "id": "after",
            "use": "test.record",
            "with": {"message": "{{ steps.each.count }} items"},
        }
        add(first, {"id": "lines", "actions": [loop() | {"steps": [write]}, counted]})
        [made] = await fire(first, LINES)
        await until(lambda: probe.sleeping == 1)  # item 1 written; the process dies now
        assert run(first, made).status == "running"
        assert [(r.step_id, r.status) for r in steps(first, made)] == [
            ("each", "running"),
            ("each[0].write", "succeeded"),
        ]
    probe.hang.clear()
    async with running(db, registry, clock) as second:
        await second.drain()
        assert run(second, made).status == "succeeded"
        output = steps(second, made)[0].output
    tags = [(key.split(":")[1], tag) for key, tag in probe.calls]
    assert tags == [  # item 0 is not done again; item 1 again with the same key
        ("each[0].write", "w0"),
        ("each[1].write", "w1"),
        ("each[1].write", "w1"),
        ("each[2].write", "w2"),
    ]
    assert [k.split(":")[1] for k in probe.applied] == [
        "each[0].write",
        "each[1].write",
        "each[2].write",
    ]
    assert output is not None
    assert [i["write"]["tag"] for i in output["results"]] == ["w0", "w1", "w2"]
    assert [c[1]["message"] for c in recorder.calls] == ["3 items"]


async def test_a_restart_mid_parallel_does_not_do_finished_branch_steps_again(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe(hang={"b2"})
    registry = registry_for(probe, recorder)

    def write(sub: str, tag: str) -> dict[str, str | dict[str, str]]:
        return {"id": sub, "use": "probe.write", "with": {"tag": tag}}

    branches = {"a": [write("one", "a1")], "b": [write("one", "b1"), write("two", "b2")]}
    joined = {"id": "after", "use": "test.record", "with": {"message": "{{ steps.fan.b.two.tag }}"}}
    async with running(db, registry, clock) as first:
        add(first, {"id": "fanned", "actions": [{"id": "fan", "parallel": branches}, joined]})
        [made] = await fire(first)
        # branch a is done and b's first step too; b2 is written; the process dies now
        await until(lambda: probe.sleeping == 1 and len(steps(first, made)) == 3)
        assert run(first, made).status == "running"
        assert [(r.step_id, r.status) for r in steps(first, made)] == [
            ("fan", "running"),
            ("fan.a.one", "succeeded"),
            ("fan.b.one", "succeeded"),
        ]
    probe.hang.clear()
    async with running(db, registry, clock) as second:
        await second.drain()
        assert run(second, made).status == "succeeded"
        output = steps(second, made)[0].output
    keys = [key.split(":")[1] for key, _ in probe.calls]
    assert sorted(keys) == ["fan.a.one", "fan.b.one", "fan.b.two", "fan.b.two"]  # b2 twice
    assert keys[-1] == "fan.b.two"  # a1 and b1 are not done again after the restart
    assert sorted(k.split(":")[1] for k in probe.applied) == ["fan.a.one", "fan.b.one", "fan.b.two"]
    assert output == {
        "a": {"one": {"tag": "a1", "repeated": False}},
        "b": {"one": {"tag": "b1", "repeated": False}, "two": {"tag": "b2", "repeated": True}},
    }
    assert [c[1]["message"] for c in recorder.calls] == ["b2"]


async def test_a_caller_waiting_through_a_restart_completes_once(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe(hang={"c1"})
    registry = registry_for(probe, recorder)
    called_write = {"id": "write", "use": "probe.write", "with": {"tag": "c{{ n }}"}}
    calling = {
        "id": "call",
        "use": "core.call_recipe",
        "with": {"recipe": "callee", "input": {"n": "{{ n }}"}},
    }
    done = {
        "id": "done",
        "use": "test.record",
        "with": {"message": "{{ steps.call.result.write.tag }}"},
    }
    async with running(db, registry, clock) as first:
        called_doc = {"id": "callee", "trigger": {"type": "sous.recipe.called"}}
        callee = add(first, called_doc | {"actions": [called_write]})
        add(first, {"id": "caller", "actions": [calling, done]})
        [made] = await fire(first, {"n": 1})
        # the called run's write is made, its caller waits for it: the process dies now
        await until(lambda: probe.sleeping == 1 and run(first, made).status == "waiting")
    probe.hang.clear()
    async with running(db, registry, clock) as second:
        await second.drain()
        assert run(second, made).status_reason is None
        assert run(second, made).status == "succeeded"
        [called] = runs(second, callee)
        assert called.status == "succeeded"
    assert list(probe.applied) == [f"{called.id}:write"]
    assert [c[1]["message"] for c in recorder.calls] == ["c1"]
    assert jobs(second) == []


async def test_a_call_whose_wait_was_not_saved_finds_its_run_after_a_restart(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    registry = registry_for(probe, recorder)
    calling = {"id": "call", "use": "core.call_recipe", "with": {"recipe": "callee"}}
    slow = {"id": "slow", "use": "probe.slow", "with": {"tag": "s", "seconds": 60}}
    called_doc = {"id": "callee", "trigger": {"type": "sous.recipe.called"}, "actions": [slow]}
    async with running(db, registry, clock) as first:
        callee = add(first, called_doc)
        add(first, {"id": "caller", "actions": [calling]})

        async def dies(*_args: object) -> bool:
            raise RuntimeError("the called run is started; the caller's worker dies here")

        first.runner._begin_wait = dies  # type: ignore[method-assign,assignment]
        [made] = await fire(first)
        await until(lambda: len(runs(first, callee)) == 1 and probe.sleeping == 1)
        await settled(first, probe)
        assert steps(first, made) == []  # the wait was never saved
    async with running(db, registry, clock) as second:
        await settled(second, probe)  # the called run's step runs again (it did not commit)
        clock.advance(60)  # the called run ends: its caller's job is due at once
        await second.drain()
        assert run(second, made).status == "succeeded"
        [called] = runs(second, callee)  # the step ran again and found the run it started
        output = steps(second, made)[0].output
        assert output is not None and output["run_id"] == called.id
        assert called.status == "succeeded"
