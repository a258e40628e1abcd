"""Test runs through the API: ``POST /v1/recipes/{id}/runs`` runs a saved recipe for real with
its writes recorded as ``would_do``; the run and its trace are read back like any other."""

from __future__ import annotations

import httpx

from engine import Engine
from tests.api.conftest import KeyFactory, product, recipe
from tests.fakes import Recorder

Client = httpx.AsyncClient
Headers = dict[str, str]


async def test_a_test_run_records_its_writes_and_shows_them_in_the_trace(
    client: Client, admin: Headers, engine: Engine, recorder: Recorder
) -> None:
    made = await client.post("/v1/recipes", json=recipe(), headers=admin)
    assert made.status_code == 201, made.text
    started = await client.post(
        "/v1/recipes/sold-out-alert/runs",
        json={"mode": "test", "event": {"payload": product(0)}},
        headers=admin,
    )
    assert started.status_code == 202, started.text
    body = started.json()
    assert (body["mode"], body["matched"], body["stage"]) == ("test", True, "matched")
    await engine.drain()
    assert recorder.calls == []  # test.record writes: recorded, not made
    shown = (await client.get(f"/v1/runs/{body['run_id']}", headers=admin)).json()
    assert (shown["status"], shown["mode"]) == ("succeeded", "test")
    note, second = shown["steps"]
    assert (note["status"], second["status"]) == ("would_do", "would_do")
    assert note["input"] == {"message": "Cat Eye Sunglasses sold out", "count": 1}
    assert note["output"]["would_do"] == "a row in the recorder"
    listed = (await client.get("/v1/runs", headers=admin)).json()["data"]
    assert [r["mode"] for r in listed] == ["test"]
    event = (await client.get(f"/v1/events/{body['event_id']}", headers=admin)).json()
    assert event["source"] == "test"


async def test_a_test_run_the_conditions_refuse_starts_nothing(
    client: Client, admin: Headers, engine: Engine
) -> None:
    await client.post("/v1/recipes", json=recipe(), headers=admin)
    started = await client.post(
        "/v1/recipes/sold-out-alert/runs", json={"event": {"payload": product(5)}}, headers=admin
    )
    assert started.status_code == 202, started.text
    body = started.json()
    assert (body["matched"], body["stage"], body["run_id"]) == (False, "conditions", None)
    assert "actual: 5" in body["reason"]["message"]
    assert (await client.get("/v1/runs", headers=admin)).json()["data"] == []


async def test_a_past_event_can_be_used_and_read_keys_cannot_start_runs(
    client: Client, admin: Headers, engine: Engine, make_key: KeyFactory, recorder: Recorder
) -> None:
    sent = await client.post(
        "/v1/events", json={"type": "test.stock", "payload": product(0)}, headers=admin
    )
    event_id = sent.json()["event_id"]
    await client.post("/v1/recipes", json=recipe(), headers=admin)
    started = await client.post(
        "/v1/recipes/sold-out-alert/runs", json={"event_id": event_id}, headers=admin
    )
    assert started.json()["matched"] is True
    await engine.drain()
    assert recorder.calls == []
    reader = make_key("default", "read")
    refused = await client.post(
        "/v1/recipes/sold-out-alert/runs", json={"event_id": event_id}, headers=reader
    )
    assert refused.status_code == 403
    missing = await client.post("/v1/recipes/nope/runs", json={}, headers=admin)
    assert missing.status_code == 404
