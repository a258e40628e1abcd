"""A ``for_each`` recipe through the API: saved with ``POST /v1/recipes``, fired by
``POST /v1/events``, its trace read back with ``GET /v1/runs/{id}`` (a row per item's sub-step,
the loop's output per item) and a replay from the failed item."""

from __future__ import annotations

from typing import Any

import httpx

from engine import Engine
from tests.api.conftest import product, recipe
from tests.fakes import Recorder

Client = httpx.AsyncClient
Headers = dict[str, str]
LOOP: dict[str, Any] = {
    "id": "each",
    "for_each": [{"sku": "a"}, {"sku": "b"}],
    "steps": [
        {"id": "say", "use": "test.record", "with": {"message": "{{ index }}:{{ item.sku }}"}},
    ],
}


async def test_a_for_each_run_shows_each_item_in_its_trace(
    client: Client, admin: Headers, engine: Engine, recorder: Recorder
) -> None:
    saved = await client.post("/v1/recipes", json=recipe(actions=[LOOP]), headers=admin)
    assert saved.status_code == 201, saved.text
    sent = await client.post(
        "/v1/events", json={"type": "test.stock", "payload": product(0)}, headers=admin
    )
    assert sent.status_code == 202, sent.text
    await engine.drain()
    [listed] = (await client.get("/v1/runs", headers=admin)).json()["data"]
    shown = (await client.get(f"/v1/runs/{listed['id']}", headers=admin)).json()
    assert shown["status"] == "succeeded"
    trace = {s["id"]: s for s in shown["steps"]}
    assert list(trace) == ["each", "each[0].say", "each[1].say"]
    assert trace["each[1].say"]["input"]["message"] == "1:b"
    loop = trace["each"]
    assert loop["input"]["total"] == 2 and loop["output"]["count"] == 2
    assert [r["say"]["echoed"] for r in loop["output"]["results"]] == ["0:a", "1:b"]
    assert [c[1]["message"] for c in recorder.calls] == ["0:a", "1:b"]


async def test_a_for_each_refused_at_save_names_the_field(client: Client, admin: Headers) -> None:
    nested = {**LOOP, "steps": [{**LOOP, "id": "inner"}]}
    refused = await client.post("/v1/recipes", json=recipe(actions=[nested]), headers=admin)
    assert refused.status_code == 422
    assert "actions" in refused.text and "for_each" in refused.text
