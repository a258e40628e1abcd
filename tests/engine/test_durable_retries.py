"""Which failures retry: timeouts, 429 (rate_limit), 5xx (server_error), connector Retry(defer);
exhausted retries fail the run with the reason; continue_on_error; secrets masked in errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from connectors.bigcommerce.errors import RateLimited, ServerError
from engine.clock import ManualClock
from engine.context import Services
from engine.model.retry import RetryOn, RetryPolicy
from engine.run.steps import StepFailed, kind_of, retries
from engine.store.db import Database
from engine.store.vault import Cipher, Vault
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

NOTE = {"id": "note", "use": "test.record", "with": {"message": "after"}}


def fail(kind: str, on: list[str] | None = None, tries: int = 3, **extra: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"id": "flaky", "use": "probe.fail", "with": {"kind": kind, **extra}}
    if on is not None:
        step["retry"] = {"tries": tries, "backoff": 10, "jitter": 0, "on": on}
    return step


def test_errors_are_classified_by_their_status() -> None:
    limited = RateLimited("429 Too Many Requests", defer=12.5, status=429)
    assert kind_of(limited) == RetryOn.RATE_LIMIT  # a Retry, but classified by its status
    assert kind_of(ServerError("503", status=503)) == RetryOn.SERVER_ERROR
    assert kind_of(Exception("no status")) == RetryOn.RETRYABLE


@pytest.mark.parametrize(
    ("kind", "on", "retried"),
    [
        (RetryOn.RATE_LIMIT, [RetryOn.RATE_LIMIT], True),
        (RetryOn.SERVER_ERROR, [RetryOn.RATE_LIMIT], False),
        (RetryOn.TIMEOUT, [RetryOn.RETRYABLE], False),
        (RetryOn.TIMEOUT, [RetryOn.TIMEOUT], True),
        (RetryOn.RATE_LIMIT, [RetryOn.RETRYABLE], True),
        (RetryOn.SERVER_ERROR, [RetryOn.RETRYABLE], True),
        (RetryOn.RETRYABLE, [RetryOn.SERVER_ERROR, RetryOn.TIMEOUT], False),
    ],
)
def test_policy_on_lists_the_kinds_that_retry(
    kind: RetryOn, on: list[RetryOn], retried: bool
) -> None:
    policy = RetryPolicy(tries=3, on=on)
    assert retries(policy, StepFailed("x", retryable=True, kind=kind), 1) is retried
    assert retries(policy, StepFailed("x", retryable=True, kind=kind), 3) is False  # exhausted
    assert retries(policy, StepFailed("x", retryable=False, kind=kind), 1) is False


@pytest.mark.parametrize(
    ("step", "retried"),
    [
        (fail("status", ["rate_limit"], status=429), True),
        (fail("status", ["rate_limit"], status=503), False),
        (fail("status", ["server_error"], status=503), True),
        (fail("retry", ["rate_limit"]), False),
        (fail("retry", ["retryable"]), True),
        (fail("timeout", ["retryable"]), False),
        (fail("timeout", ["timeout"]), True),
        (fail("permanent"), False),
    ],
)
async def test_which_failures_retry_in_a_run(
    db: Database, clock: ManualClock, recorder: Recorder, step: dict[str, Any], retried: bool
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, {"id": "flaky", "actions": [step, NOTE]})
        [made] = await fire(engine)
        await engine.drain()
        assert run(engine, made).status == ("retrying" if retried else "failed")
        if retried:
            clock.advance(30)
            await engine.drain()
            assert run(engine, made).status == "succeeded"
            assert steps(engine, made)[0].attempts == 2
        else:
            assert len(probe.calls) == 1


async def test_retry_defer_and_rate_limits_set_the_due_time(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, {"id": "deferred", "actions": [fail("retry", ["retryable"], defer=90), NOTE]})
        start = clock.now()
        [made] = await fire(engine)
        await engine.drain()
        waiting = run(engine, made)
        assert waiting.status == "retrying"
        assert waiting.due_at is not None and waiting.due_at.replace(
            tzinfo=start.tzinfo
        ) == start + timedelta(seconds=90)
        trace = steps(engine, made)[0]
        assert trace.status == "retrying" and trace.error == "it broke (retry in 90s)"
        clock.advance(89)
        await engine.drain()
        assert run(engine, made).status == "retrying"
        clock.advance(1)
        await engine.drain()
        assert run(engine, made).status == "succeeded"


async def test_exhausted_retries_fail_the_run_with_the_reason(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(
            engine,
            {
                "id": "hopeless",
                "actions": [
                    fail(
                        "status",
                        ["server_error"],
                        tries=3,
                        status=502,
                        times=9,
                        message="bad gateway",
                    ),
                    NOTE,
                ],
            },
        )
        [made] = await fire(engine)
        for _ in range(5):
            await engine.drain()
            clock.advance(600)
        await engine.drain()
        failed = run(engine, made)
        assert failed.status == "failed"
        assert failed.status_reason == "step flaky: bad gateway (gave up after 3 attempts)"
        assert [(s.status, s.attempts) for s in steps(engine, made)] == [("failed", 3)]
        assert len(probe.calls) == 3
        assert recorder.calls == []
    assert jobs(engine) == []


async def test_continue_on_error_records_the_failure(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock) as engine:
        step = fail("permanent", message="refused") | {"continue_on_error": True}
        add(engine, {"id": "carry-on", "actions": [step, NOTE]})
        [made] = await fire(engine)
        await engine.drain()
        done = run(engine, made)
        assert done.status == "succeeded_with_errors"
        assert [(s.status, s.error) for s in steps(engine, made)] == [
            ("failed", "refused"),
            ("succeeded", None),
        ]
        assert [c[1]["message"] for c in recorder.calls] == ["after"]


async def test_secrets_are_masked_in_stored_errors(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    vault = Vault(db, Cipher("tests-only"), clock)
    vault.put("default", "ERP_TOKEN", "s3cr3t-erp-token")
    services = Services()
    services.add(vault)
    probe = Probe()
    async with running(db, registry_for(probe, recorder), clock, services=services) as engine:
        step = fail("permanent", message="401 for token {{ secrets.ERP_TOKEN }}")
        add(engine, {"id": "leaky", "actions": [step]})
        [made] = await fire(engine)
        await engine.drain()
        failed = run(engine, made)
        assert failed.status == "failed"
        assert failed.status_reason == "step flaky: 401 for token ***"
        assert steps(engine, made)[0].error == "401 for token ***"
        retrying = fail("retryable", ["retryable"], message="{{ secrets.ERP_TOKEN }} timed out")
        add(
            engine, {"id": "leaky-retry", "trigger": {"type": "custom.leak"}, "actions": [retrying]}
        )
        [again] = await fire(engine, type_="custom.leak")
        await engine.drain()
        assert steps(engine, again)[0].error == "*** timed out"


async def test_a_resumed_run_reads_outputs_as_returned_not_as_masked(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    vault = Vault(db, Cipher("tests-only"), clock)
    vault.put("default", "ERP_TOKEN", "s3cr3t-erp-token")
    services = Services()
    services.add(vault)
    recorder.failures["pause"] = 1
    actions = [
        {"id": "login", "use": "test.record", "with": {"message": "{{ secrets.ERP_TOKEN }}"}},
        {"id": "pause", "use": "test.flaky"},  # fails once: the run waits for its retry
        {"id": "use", "use": "test.record", "with": {"message": "{{ steps.login.echoed }}"}},
    ]
    registry = registry_for(Probe(), recorder)
    async with running(db, registry, clock, services=services) as engine:
        add(engine, {"id": "sealed", "actions": actions})
        [made] = await fire(engine)
        await engine.drain()
        assert run(engine, made).status == "retrying"
        [login, _] = steps(engine, made)
    assert login.output == {"echoed": "***", "count": 0}  # the trace masks the secret
    assert login.output_sealed is not None and "s3cr3t" not in login.output_sealed
    async with running(db, registry, clock, services=services) as engine:  # a restart
        clock.advance(60)
        await engine.drain()
        assert run(engine, made).status == "succeeded"
    assert [c["message"] for c in recorder.named("test.record")] == ["s3cr3t-erp-token"] * 2
