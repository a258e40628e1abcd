"""A failed run as ``GET /v1/runs/{id}`` shows it: the failed step's rendered input and every
attempt with its time, its error and the delay before the next."""

from __future__ import annotations

import httpx

from engine import Engine
from engine.clock import ManualClock
from tests.api.conftest import recipe
from tests.fakes import Recorder


async def test_the_run_shows_the_failed_steps_input_and_attempts(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    engine: Engine,
    clock: ManualClock,
    recorder: Recorder,
) -> None:
    flaky = {"id": "push", "use": "test.flaky", "with": {"mode": "retryable"}}
    made = await client.post("/v1/recipes", json=recipe(actions=[flaky]), headers=admin)
    assert made.status_code == 201, made.text
    recorder.failures["push"] = 9
    sent = await client.post(
        "/v1/events", json={"type": "test.stock", "payload": {"product": {"id": 1}}}, headers=admin
    )
    run_id = sent.json()["runs"][0]
    for _ in range(4):
        await engine.drain()
        clock.advance(60)
    shown = (await client.get(f"/v1/runs/{run_id}", headers=admin)).json()
    assert shown["status"] == "failed"
    [step] = shown["steps"]
    assert step["input"] == {"mode": "retryable"}
    assert [(a["attempt"], a["error"], a["retry_in_s"]) for a in step["attempt_log"]] == [
        (1, "temporary failure", 10.0),
        (2, "temporary failure", 20.0),
        (3, "temporary failure", None),
    ]
    assert all(a["started_at"] <= a["finished_at"] for a in step["attempt_log"])
