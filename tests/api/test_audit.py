"""The audit log through the front door: every change to recipes, stores, keys, secrets, hooks
and settings is there with who made it, when and (for recipes) a diff; filters and pages;
retention deletes old entries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from api.keys import create_key
from engine import Engine
from engine.clock import ManualClock
from engine.ops.retention import Retention, RetentionSettings
from engine.store.db import Database
from tests.api.conftest import GOOD_TOKEN, KeyFactory, recipe

Client = httpx.AsyncClient


async def entries(client: Client, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    answer = await client.get("/v1/audit", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]  # type: ignore[no-any-return]


async def test_every_change_is_logged_with_its_author_newest_first(
    client: Client, admin: dict[str, str], make_key: KeyFactory
) -> None:
    me = (await client.get("/v1/keys", headers=admin)).json()["data"][0]["id"]
    why = {**admin, "Sous-Reason": "ticket 42: staff asked"}
    assert (await client.post("/v1/recipes", json=recipe(), headers=why)).status_code == 201
    changed = recipe(name="Sold out!", version=1)
    put = await client.put("/v1/recipes/sold-out-alert", json=changed, headers=admin)
    assert put.status_code == 200, put.text
    await client.post("/v1/recipes/sold-out-alert/disable", headers=admin)
    await client.put("/v1/secrets/SMTP_PASSWORD", json={"value": "hunter2"}, headers=admin)
    await client.delete("/v1/secrets/SMTP_PASSWORD", headers=admin)
    store = {"store_hash": "abc", "access_token": GOOD_TOKEN}
    assert (await client.post("/v1/stores", json=store, headers=admin)).status_code == 201
    await client.delete("/v1/stores/abc", headers=admin)
    key = await client.post("/v1/keys", json={"name": "ro", "scopes": ["read"]}, headers=admin)
    await client.delete(f"/v1/keys/{key.json()['id']}", headers=admin)
    await client.patch("/v1/workspace", json={"name": "Acme"}, headers=admin)
    await client.delete("/v1/recipes/sold-out-alert", headers=admin)
    log = await entries(client, admin)
    assert [(e["kind"], e["action"], e["target"]) for e in log] == [
        ("recipe", "deleted", "sold-out-alert"),
        ("workspace", "renamed", "default"),
        ("key", "revoked", key.json()["id"]),
        ("key", "created", key.json()["id"]),
        ("store", "disconnected", "abc"),
        ("store", "connected", "abc"),
        ("secret", "deleted", "SMTP_PASSWORD"),
        ("secret", "created", "SMTP_PASSWORD"),
        ("recipe", "disabled", "sold-out-alert"),
        ("recipe", "updated", "sold-out-alert"),
        ("recipe", "created", "sold-out-alert"),
        ("key", "created", me),
    ]
    assert {e["actor"] for e in log[:-1]} == {f"key:{me}"}
    assert log[-1]["actor"] == "cli"  # the key the test made as `sous keys create` does
    assert "hunter2" not in str(log)
    updated = next(e for e in log if e["action"] == "updated")
    assert '-  "name": "Tell staff when a product sells out",' in updated["diff"]
    assert '+  "name": "Sold out!",' in updated["diff"]
    created = log[-2]
    assert created["reason"] == "ticket 42: staff asked"
    assert log[0]["reason"] is None


async def test_recipe_versions_name_their_author_and_reason(
    client: Client, admin: dict[str, str]
) -> None:
    me = (await client.get("/v1/keys", headers=admin)).json()["data"][0]["id"]
    await client.post("/v1/recipes", json=recipe(), headers=admin)
    await client.put(
        "/v1/recipes/sold-out-alert",
        json=recipe(name="Renamed", version=1),
        headers={**admin, "Sous-Reason": "clearer name"},
    )
    versions = (await client.get("/v1/recipes/sold-out-alert/versions", headers=admin)).json()
    assert [(v["version"], v["author"], v["reason"]) for v in versions["data"]] == [
        (1, f"key:{me}", None),
        (2, f"key:{me}", "clearer name"),
    ]


async def test_the_log_filters_pages_and_is_for_admins(
    client: Client, admin: dict[str, str], make_key: KeyFactory, clock: ManualClock
) -> None:
    other = make_key("default", "admin")
    for n in range(3):
        await client.post("/v1/recipes", json=recipe(id=f"r{n}"), headers=admin)
        clock.advance(60)
    await client.put("/v1/secrets/X", json={"value": "1"}, headers=other)
    recipes = await entries(client, admin, kind="recipe", limit=2)
    assert [e["target"] for e in recipes] == ["r2", "r1"]
    page = await client.get("/v1/audit", params={"kind": "recipe", "limit": 2}, headers=admin)
    rest = await entries(client, admin, kind="recipe", cursor=page.json()["next_cursor"])
    assert [e["target"] for e in rest] == ["r0"]
    secrets = await entries(client, admin, kind="secret")
    by_other = await entries(client, admin, actor=secrets[0]["actor"])
    assert [e["target"] for e in by_other] == ["X"]
    middle = recipes[1]["at"]
    early = await entries(client, admin, until=middle, kind="recipe")
    assert [e["target"] for e in early] == ["r0"]
    assert [e["target"] for e in await entries(client, admin, target="r1")] == ["r1"]
    bad = await client.get("/v1/audit", params={"kind": "nonsense"}, headers=admin)
    assert bad.status_code == 422
    reader = make_key("default", "read")
    assert (await client.get("/v1/audit", headers=reader)).status_code == 403
    elsewhere = make_key("elsewhere", "admin")
    assert [e["kind"] for e in await entries(client, elsewhere)] == ["key"]  # its own key


async def test_a_refused_change_leaves_no_entry(client: Client, admin: dict[str, str]) -> None:
    await client.post("/v1/recipes", json=recipe(), headers=admin)
    again = await client.post("/v1/recipes", json=recipe(), headers=admin)
    assert again.status_code == 409
    stale = await client.put(
        "/v1/recipes/sold-out-alert", json=recipe(name="x", version=7), headers=admin
    )
    assert stale.status_code == 409
    assert [e["action"] for e in await entries(client, admin, kind="recipe")] == ["created"]


async def test_an_agency_reads_each_clients_log(
    client: Client, api_db: Database, make_key: KeyFactory
) -> None:
    studio = {
        "Authorization": f"Bearer {create_key(api_db, 'studio', ['admin'], 'a', agency=True)}"
    }
    await client.post("/v1/workspaces", json={"name": "North"}, headers=studio)
    north = {**studio, "Sous-Workspace": "north"}
    await client.post("/v1/recipes", json=recipe(), headers=north)
    agency_key = (await client.get("/v1/keys", headers=studio)).json()["data"][0]["id"]
    log = await entries(client, north)
    assert [(e["kind"], e["action"], e["actor"]) for e in log] == [
        ("recipe", "created", f"key:{agency_key}"),
        ("workspace", "created", f"key:{agency_key}"),
    ]
    own = await entries(client, studio)
    assert [(e["kind"], e["target"]) for e in own] == [
        ("workspace", "north"),
        ("key", agency_key),
    ]
    assert await entries(client, make_key("north", "admin"), kind="recipe") == log[:1]


async def test_retention_deletes_entries_past_their_keep_time(
    client: Client, admin: dict[str, str], api_db: Database, clock: ManualClock, engine: Engine
) -> None:
    await client.post("/v1/recipes", json=recipe(id="old"), headers=admin)
    clock.advance(timedelta(days=30).total_seconds())
    await client.post("/v1/recipes", json=recipe(id="new"), headers=admin)
    report = await Retention(api_db, clock, RetentionSettings.days(audit=10)).run()
    assert report.audit == 2  # "old", and the test key's entry (made earlier, on the wall clock)
    assert [e["target"] for e in await entries(client, admin, kind="recipe")] == ["new"]
