"""A test run survives a restart mid-step: the process stops while a read is being retried, the
next one takes the run back from the database, and its writes are still recorded, not made."""

from __future__ import annotations

from engine.clock import ManualClock
from engine.ingest.inbox import received
from engine.model.events import NewEvent
from engine.store.db import Database
from tests.engine.test_durable_support import Probe, add, registry_for, run, running, steps
from tests.fakes import Recorder


async def test_a_test_run_resumed_after_a_restart_still_makes_no_write(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    registry = registry_for(probe, recorder)
    read = {
        "id": "read",
        "use": "probe.fail",
        "with": {"kind": "retryable", "times": 1},
        "retry": {"tries": 3, "backoff": 10, "jitter": 0, "on": ["retryable"]},
    }
    write = {"id": "write", "use": "probe.write", "with": {"tag": "w"}}
    async with running(db, registry, clock) as engine:
        add(engine, {"id": "careful", "actions": [read, write]})
        event = received(NewEvent(type="probe.event", payload={"product": {"id": 1}}), clock.now())
        started = await engine.test_run("default", "careful", event)
        assert started.run_id is not None
        await engine.drain()
        assert run(engine, started.run_id).status == "retrying"  # the read failed once
    clock.advance(60)  # this process is gone; the next takes the run back
    async with running(db, registry, clock) as engine:
        await engine.drain()
        finished = run(engine, started.run_id)
        trace = steps(engine, started.run_id)
    assert finished.status == "succeeded"
    assert [(s.step_id, s.status) for s in trace] == [("read", "succeeded"), ("write", "would_do")]
    assert probe.applied == {}  # the write was never made
    assert [tag for _, tag in probe.calls] == ["fail", "fail"]
