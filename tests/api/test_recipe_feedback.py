"""What a merchant learns from the API about a recipe that will not run: a store that is not
connected (said when saving), and a disabled recipe (said on every event it would have seen)."""

from __future__ import annotations

import httpx

from engine import Engine
from tests.api.conftest import GOOD_TOKEN, product, recipe
from tests.fakes import Recorder

Client = httpx.AsyncClient
Headers = dict[str, str]


async def test_saving_for_a_store_not_connected_warns_and_names_the_connected_ones(
    client: Client, admin: Headers
) -> None:
    made = await client.post("/v1/recipes", json=recipe(store="abc123"), headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["warnings"] == [
        "store 'abc123' is not connected to this workspace: the recipe will not run for it "
        "until it is (connected stores: none yet)"
    ]
    connected = await client.post(
        "/v1/stores", json={"store_hash": "abc123", "access_token": GOOD_TOKEN}, headers=admin
    )
    assert connected.status_code == 201, connected.text
    typo = await client.put(
        "/v1/recipes/sold-out-alert",
        json=recipe(store=["abc123", "abc132"]),
        headers=admin | {"If-Match": '"1"'},
    )
    assert typo.status_code == 200, typo.text
    assert len(typo.json()["warnings"]) == 1
    assert typo.json()["warnings"][0].startswith("store 'abc132' is not connected")
    assert "(connected stores: abc123)" in typo.json()["warnings"][0]
    every = await client.post("/v1/recipes", json=recipe(id="all-stores"), headers=admin)
    assert every.json()["warnings"] == []


async def test_a_disabled_recipe_leaves_a_disabled_decision_on_the_event(
    client: Client, admin: Headers, engine: Engine, recorder: Recorder
) -> None:
    assert (await client.post("/v1/recipes", json=recipe(), headers=admin)).status_code == 201
    off = await client.post("/v1/recipes/sold-out-alert/disable", headers=admin)
    assert off.status_code == 200 and off.json()["enabled"] is False
    engine.reload()  # as after a restart: disabled recipes are indexed too
    event = {"type": "test.stock", "payload": product(0)}
    sent = (await client.post("/v1/events", json=event, headers=admin)).json()
    assert sent["runs"] == []
    shown = (await client.get(f"/v1/events/{sent['event_id']}", headers=admin)).json()
    [decision] = shown["decisions"]
    assert decision["recipe_id"] == "sold-out-alert"
    assert (decision["matched"], decision["stage"], decision["run_id"]) == (False, "disabled", None)
    assert "disabled" in decision["reason"]["message"]
    await client.post("/v1/recipes/sold-out-alert/enable", headers=admin)
    again = (await client.post("/v1/events", json=event, headers=admin)).json()
    assert len(again["runs"]) == 1
    await client.delete("/v1/recipes/sold-out-alert", headers=admin)
    gone = (await client.post("/v1/events", json=event, headers=admin)).json()
    shown = (await client.get(f"/v1/events/{gone['event_id']}", headers=admin)).json()
    assert shown["decisions"] == []
