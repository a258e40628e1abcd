"""Usage through the front door: runs and steps counted per workspace, store, recipe and day
(written with the engine's own commits), read per day, store or recipe; daily limits refuse
more work with an error that names the limit; Prometheus shows today's usage per workspace."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.keys import create_key
from engine import Engine
from engine.clock import ManualClock
from engine.store.db import Database
from engine.store.usage import UsageMeter, count_usage, metering, usage_key
from tests.api.conftest import recipe

Client = httpx.AsyncClient
SOLD_OUT = {"product": {"id": 1, "name": "Tent", "inventory_level": 0}}


@pytest.fixture
def studio(api_db: Database) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(api_db, 'studio', ['admin'], 'a', agency=True)}"}


async def send(client: Client, headers: dict[str, str], store: str, n: int = 1) -> None:
    for _ in range(n):
        body = {"type": "test.stock", "store": store, "payload": SOLD_OUT}
        sent = await client.post("/v1/events", json=body, headers=headers)
        assert sent.status_code == 202, sent.text


async def usage(client: Client, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    answer = await client.get("/v1/usage", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_runs_and_steps_are_counted_per_day_store_and_recipe(
    client: Client, studio: dict[str, str], engine: Engine, clock: ManualClock
) -> None:
    await client.post("/v1/workspaces", json={"name": "North"}, headers=studio)
    north = {**studio, "Sous-Workspace": "north"}
    await client.post("/v1/recipes", json=recipe(), headers=north)
    await client.post(
        "/v1/recipes", json=recipe(id="other", actions=recipe()["actions"][:1]), headers=north
    )
    await send(client, north, "s1", 2)
    await engine.drain()
    clock.advance(86_400)
    await send(client, north, "s2")
    await engine.drain()
    shown = await usage(client, north)
    assert [(d["day"], d["runs"], d["steps"]) for d in shown["data"]] == [
        ("2026-11-28", 2, 3),
        ("2026-11-27", 4, 6),
    ]
    assert (shown["totals"]["runs"], shown["totals"]["steps"]) == (6, 9)
    assert (shown["today"]["runs"], shown["today"]["steps"]) == (2, 3)
    by_store = await usage(client, north, by="store")
    assert [(d["day"], d["store"], d["runs"]) for d in by_store["data"]] == [
        ("2026-11-28", "s2", 2),
        ("2026-11-27", "s1", 4),
    ]
    by_recipe = await usage(client, north, by="recipe", since="2026-11-27", until="2026-11-27")
    assert sorted((d["recipe"], d["runs"], d["steps"]) for d in by_recipe["data"]) == [
        ("other", 2, 2),
        ("sold-out-alert", 2, 4),
    ]
    one = await usage(client, north, recipe="other")
    assert one["totals"]["steps"] == 3
    paged = await usage(client, north, by="recipe", limit=1)
    rest = await usage(client, north, by="recipe", limit=5, cursor=paged["next_cursor"])
    assert len(paged["data"]) + len(rest["data"]) == 4
    assert (await usage(client, studio))["totals"]["runs"] == 0  # the agency's own workspace
    bad = await client.get(
        "/v1/usage", params={"since": "2026-12-01", "until": "2026-11-01"}, headers=north
    )
    assert bad.status_code == 422


async def test_a_daily_limit_refuses_more_work_and_says_which(
    client: Client, studio: dict[str, str], engine: Engine, clock: ManualClock
) -> None:
    made = await client.post(
        "/v1/workspaces", json={"name": "Small", "limits": {"runs": 2}}, headers=studio
    )
    assert made.json()["limits"]["runs"] == 2
    small = {**studio, "Sous-Workspace": "small"}
    await client.post("/v1/recipes", json=recipe(), headers=small)
    await send(client, small, "s1", 2)
    await engine.drain()
    refused = await client.post(
        "/v1/events", json={"type": "test.stock", "payload": SOLD_OUT}, headers=small
    )
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "usage_limit_reached"
    assert "may use 2 runs a day" in error["message"]
    assert "PATCH /v1/workspaces/small" in error["message"]
    await client.patch("/v1/workspaces/small", json={"limits": {"steps": 5}}, headers=studio)
    clock.advance(10)  # past the limits' cache
    await send(client, small, "s1")  # 2 more steps: 6 > 5, the second is refused
    await engine.drain()
    runs = (await client.get("/v1/runs", headers=small)).json()["data"]
    assert runs[0]["status"] == "cancelled"
    assert "may use 5 steps a day" in runs[0]["status_reason"]
    assert (await usage(client, small))["today"]["steps"] == 5
    clock.advance(86_400)
    await send(client, small, "s1")  # a new day
    await engine.drain()
    assert (await client.get("/v1/runs", headers=small)).json()["data"][0]["status"] == "succeeded"


async def test_prometheus_shows_todays_usage_by_workspace(
    client: Client, studio: dict[str, str], engine: Engine
) -> None:
    await client.post("/v1/recipes", json=recipe(), headers=studio)
    await send(client, studio, "s1", 3)
    await engine.drain()
    text = (await client.get("/metrics")).text
    assert 'sous_usage_today{workspace="studio",metric="runs"} 3' in text
    assert 'sous_usage_today{workspace="studio",metric="steps"} 6' in text


def test_work_inside_a_step_is_counted_for_its_run() -> None:
    meter = UsageMeter()
    key = usage_key("acme", "2026-12-01T10:00:00", "s1", "rcp_1")
    count_usage("store_requests")  # outside any run: nobody's
    with metering(meter, key):
        count_usage("store_requests", 2)
    assert meter.take() == {("acme", "2026-12-01", "s1", "rcp_1"): {"store_requests": 2}}
