"""Backtests through the API: a saved recipe and an unsaved draft against events sent through
``POST /v1/events``; the answer counts fires and refusals, and nothing new is run."""

from __future__ import annotations

from datetime import timedelta

import httpx

from engine import Engine
from engine.clock import ManualClock
from tests.api.conftest import product, recipe
from tests.fakes import Recorder

Client = httpx.AsyncClient
Headers = dict[str, str]


async def send_stock(client: Client, headers: Headers, levels: list[int]) -> None:
    for level in levels:
        sent = await client.post(
            "/v1/events", json={"type": "test.stock", "payload": product(level)}, headers=headers
        )
        assert sent.status_code == 202, sent.text


async def test_a_saved_recipe_is_backtested_over_the_events_of_a_range(
    client: Client, admin: Headers, engine: Engine, clock: ManualClock, recorder: Recorder
) -> None:
    since = clock.now().isoformat()
    await send_stock(client, admin, [0, 4, 0, 7])  # sent before the recipe: nothing runs
    made = await client.post("/v1/recipes", json=recipe(), headers=admin)
    assert made.status_code == 201, made.text
    clock.advance(5)
    until = clock.now().isoformat()
    answer = await client.post(
        "/v1/recipes/sold-out-alert/backtest", json={"since": since, "until": until}, headers=admin
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["events"], body["fired"], body["fire_rate"]) == (4, 2, 0.5)
    assert body["conditions"][0]["rejected"] == 2
    assert "actual: 4" in body["conditions"][0]["example"]["message"]
    assert body["subjects"]["product"]["top"] == [
        {"id": "77", "name": "Cat Eye Sunglasses", "fires": 2}
    ]
    await engine.drain()
    assert recorder.calls == []  # the backtest ran nothing
    runs = (await client.get("/v1/runs", headers=admin)).json()
    assert runs["data"] == []


async def test_a_draft_is_backtested_and_bad_input_is_refused(
    client: Client, admin: Headers, clock: ManualClock
) -> None:
    since = (clock.now() - timedelta(hours=1)).isoformat()
    await send_stock(client, admin, [0, 1, 2])
    draft = recipe(conditions=[{">=": [{"var": "product.inventory_level"}, 1]}])
    answer = await client.post(
        "/v1/recipes/backtest", json={"recipe": draft, "since": since}, headers=admin
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["events"], answer.json()["fired"]) == (3, 2)
    limited = await client.post(
        "/v1/recipes/backtest", json={"recipe": draft, "since": since, "limit": 1}, headers=admin
    )
    assert (limited.json()["events"], limited.json()["complete"]) == (1, False)
    invalid = await client.post(
        "/v1/recipes/backtest", json={"recipe": {"id": "x"}, "since": since}, headers=admin
    )
    assert invalid.status_code == 422
    assert invalid.json()["error"]["code"] == "invalid_recipe"
    backwards = await client.post(
        "/v1/recipes/backtest",
        json={"recipe": draft, "since": clock.now().isoformat(), "until": since},
        headers=admin,
    )
    assert backwards.status_code == 422
    assert backwards.json()["error"]["details"][0]["path"] == "/until"
    missing = await client.post("/v1/recipes/nope/backtest", json={"since": since}, headers=admin)
    assert missing.status_code == 404


async def test_a_backtest_reads_only_its_own_workspace(
    client: Client, admin: Headers, make_key: object, clock: ManualClock
) -> None:
    since = (clock.now() - timedelta(hours=1)).isoformat()
    await send_stock(client, admin, [0, 0])
    other = make_key("acme", "read")  # type: ignore[operator]
    answer = await client.post(
        "/v1/recipes/backtest", json={"recipe": recipe(), "since": since}, headers=other
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["events"] == 0
