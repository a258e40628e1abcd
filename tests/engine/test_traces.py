"""Traces that explain failures: a failed step keeps its rendered input (secrets masked) and
every attempt (when, the error, the delay before the next), across a restart too."""

from __future__ import annotations

from datetime import datetime

from engine.clock import ManualClock
from engine.context import Services
from engine.store.db import Database
from engine.store.vault import Cipher, Vault
from tests.engine.test_durable_support import (
    Probe,
    add,
    fire,
    registry_for,
    run,
    running,
    steps,
)
from tests.fakes import Recorder


def failing(times: int, **extra: object) -> dict[str, object]:
    return {
        "id": "push",
        "use": "probe.fail",
        "with": {"kind": "status", "status": 502, "times": times, **extra},
        "retry": {"tries": 3, "backoff": 10, "factor": 2, "jitter": 0, "on": ["server_error"]},
    }


async def test_a_failed_step_keeps_its_input_masked_and_every_attempt(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    vault = Vault(db, Cipher("tests-only"), clock)
    vault.put("default", "ERP_TOKEN", "s3cr3t-erp-token")
    services = Services()
    services.add(vault)
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock, services=services) as engine:
        message = "bad gateway for {{ product.id }} ({{ secrets.ERP_TOKEN }})"
        add(engine, {"id": "hopeless", "actions": [failing(9, message=message)]})
        [made] = await fire(engine, {"product": {"id": 42}})
        for _ in range(4):
            await engine.drain()
            clock.advance(60)
        assert run(engine, made).status == "failed"
        [step] = steps(engine, made)
    assert step.status == "failed"
    assert step.input == {
        "kind": "status",
        "status": 502,
        "times": 9,
        "message": "bad gateway for 42 (***)",
    }
    log = step.attempt_log
    assert log is not None
    assert [(a["attempt"], a["error"], a["retry_in_s"]) for a in log] == [
        (1, "bad gateway for 42 (***)", 10.0),
        (2, "bad gateway for 42 (***)", 20.0),
        (3, "bad gateway for 42 (***)", None),
    ]
    starts = [datetime.fromisoformat(a["started_at"]) for a in log]
    assert starts == sorted(starts) and starts[0] < starts[-1]
    assert "s3cr3t" not in str(step.model_dump())


async def test_the_attempt_log_survives_a_restart_and_stays_on_success(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    registry = registry_for(probe, recorder)
    async with running(db, registry, clock) as engine:
        add(engine, {"id": "flaky", "actions": [failing(2, message="busy")]})
        [made] = await fire(engine)
        await engine.drain()
        [waiting] = steps(engine, made)
        assert (waiting.status, len(waiting.attempt_log or [])) == ("retrying", 1)
    clock.advance(60)  # the process is gone; another starts and takes the run back
    async with running(db, registry, clock) as engine:
        for _ in range(3):
            await engine.drain()
            clock.advance(60)
        assert run(engine, made).status == "succeeded"
        [step] = steps(engine, made)
    assert step.input is not None
    assert (step.status, step.attempts, step.input["message"]) == ("succeeded", 3, "busy")
    assert [a["retry_in_s"] for a in step.attempt_log or []] == [10.0, 20.0]


async def test_a_step_that_succeeds_at_once_has_no_attempt_log(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, {"id": "fine", "actions": [failing(0)]})
        [made] = await fire(engine)
        await engine.drain()
        [step] = steps(engine, made)
    assert (step.status, step.attempt_log) == ("succeeded", None)
