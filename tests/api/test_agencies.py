"""Agencies through the front door: an agency key creates client workspaces, acts in one by
naming it (``Sous-Workspace``), archives one; keys limited to stores see only those stores."""

from __future__ import annotations

import argparse
from typing import Any

import httpx
import pytest

from api.cli_keys import register
from api.keys import create_key
from engine import Engine
from engine.model.events import NewEvent
from engine.store.db import Database
from tests.api.conftest import GOOD_TOKEN, KeyFactory, error_of, recipe

Client = httpx.AsyncClient


def agency_key(db: Database, agency: str = "studio", *scopes: str) -> dict[str, str]:
    key = create_key(db, agency, list(scopes or ("admin",)), "agency", agency=True)
    return {"Authorization": f"Bearer {key}"}


def acting(headers: dict[str, str], workspace: str) -> dict[str, str]:
    return {**headers, "Sous-Workspace": workspace}


@pytest.fixture
async def onboarded(client: Client, api_db: Database) -> dict[str, Any]:
    """Agency ``studio`` with two clients, each with a recipe and a store."""
    studio = agency_key(api_db)
    for name in ("North Outfitters", "South Supply"):
        made = await client.post("/v1/workspaces", json={"name": name}, headers=studio)
        assert made.status_code == 201, made.text
    for workspace, store in (("north-outfitters", "nnn"), ("south-supply", "sss")):
        there = acting(studio, workspace)
        body = {"store_hash": store, "access_token": GOOD_TOKEN}
        assert (await client.post("/v1/stores", json=body, headers=there)).status_code == 201
        created = await client.post(
            "/v1/recipes", json=recipe(id=f"{workspace}-alert"), headers=there
        )
        assert created.status_code == 201, created.text
    return {"studio": studio}


async def test_an_agency_onboards_clients_and_acts_in_each_by_naming_it(
    client: Client, onboarded: dict[str, Any]
) -> None:
    studio = onboarded["studio"]
    listed = (await client.get("/v1/workspaces", headers=studio)).json()
    assert [(w["id"], w["agency"]) for w in listed["data"]] == [
        ("north-outfitters", "studio"),
        ("south-supply", "studio"),
        ("studio", None),
    ]
    north = (await client.get("/v1/recipes", headers=acting(studio, "north-outfitters"))).json()
    assert [r["id"] for r in north["data"]] == ["north-outfitters-alert"]
    own = (await client.get("/v1/recipes", headers=studio)).json()
    assert own["data"] == []  # without the header: the agency's own workspace
    shown = await client.get("/v1/workspace", headers=acting(studio, "south-supply"))
    assert (shown.json()["id"], shown.json()["recipes"], shown.json()["stores"]) == (
        "south-supply",
        1,
        1,
    )
    renamed = await client.patch(
        "/v1/workspaces/south-supply", json={"name": "South Supply Co"}, headers=studio
    )
    assert renamed.json()["name"] == "South Supply Co"
    taken = await client.post("/v1/workspaces", json={"name": "north outfitters"}, headers=studio)
    assert taken.status_code == 409


async def test_a_workspace_named_in_any_script_gets_an_id(client: Client, api_db: Database) -> None:
    studio = agency_key(api_db)
    made = {}
    for name in ("Café 22", "東京ストア", "大阪ストア", "!!!"):
        answer = await client.post("/v1/workspaces", json={"name": name}, headers=studio)
        assert answer.status_code == 201, answer.text
        assert answer.json()["name"] == name
        made[name] = answer.json()["id"]
    assert made["Café 22"] == "caf-22"
    assert made["東京ストア"].startswith("ws-") and made["東京ストア"] != made["大阪ストア"]
    again = await client.post("/v1/workspaces", json={"name": "東京ストア"}, headers=studio)
    assert again.status_code == 409
    shown = await client.get("/v1/workspace", headers=acting(studio, made["東京ストア"]))
    assert shown.json()["name"] == "東京ストア"


async def test_archiving_a_client_disables_its_recipes_and_stops_its_keys(
    client: Client, onboarded: dict[str, Any], make_key: KeyFactory
) -> None:
    studio = onboarded["studio"]
    own = make_key("south-supply", "read")
    assert (await client.get("/v1/recipes", headers=own)).status_code == 200
    archived = await client.patch(
        "/v1/workspaces/south-supply", json={"archived": True}, headers=studio
    )
    assert archived.status_code == 200, archived.text
    assert archived.json()["archived_at"] is not None
    assert (await client.get("/v1/recipes", headers=own)).status_code == 401
    refused = await client.get("/v1/recipes", headers=acting(studio, "south-supply"))
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "workspace_archived"
    listed = (await client.get("/v1/workspaces", headers=studio)).json()["data"]
    assert "south-supply" not in [w["id"] for w in listed]
    everything = await client.get("/v1/workspaces?archived=true", headers=studio)
    assert "south-supply" in [w["id"] for w in everything.json()["data"]]
    back = await client.patch(
        "/v1/workspaces/south-supply", json={"archived": False}, headers=studio
    )
    assert back.json()["archived_at"] is None
    again = await client.get("/v1/recipes", headers=acting(studio, "south-supply"))
    [alert] = again.json()["data"]
    assert (alert["enabled"], alert["disabled_reason"]) == (False, "the workspace was archived")


async def test_only_an_agency_key_manages_workspaces_or_names_another(
    client: Client, onboarded: dict[str, Any], make_key: KeyFactory, api_db: Database
) -> None:
    studio = onboarded["studio"]
    plain = make_key("solo", "admin")
    refused = await client.post("/v1/workspaces", json={"name": "Mine"}, headers=plain)
    assert (refused.status_code, error_of(refused)["code"]) == (403, "not_an_agency_key")
    named = await client.get("/v1/recipes", headers=acting(plain, "north-outfitters"))
    assert (named.status_code, error_of(named)["code"]) == (403, "not_an_agency_key")
    assert (await client.get("/v1/recipes", headers=acting(plain, "solo"))).status_code == 200
    listed = (await client.get("/v1/workspaces", headers=plain)).json()["data"]
    assert [w["id"] for w in listed] == ["solo"]
    rival = agency_key(api_db, "rival")
    for workspace in ("north-outfitters", "solo", "studio", "nowhere"):
        answer = await client.get("/v1/recipes", headers=acting(rival, workspace))
        assert answer.status_code == 404, workspace
        assert (await client.get(f"/v1/workspaces/{workspace}", headers=rival)).status_code == 404
    in_client = acting(studio, "north-outfitters")
    nested = await client.post("/v1/workspaces", json={"name": "Nested"}, headers=in_client)
    assert nested.status_code == 403
    body = {"name": "more", "scopes": ["read"], "agency": True}
    assert (await client.post("/v1/keys", json=body, headers=plain)).status_code == 403
    assert (await client.post("/v1/keys", json=body, headers=in_client)).status_code == 403
    made = await client.post("/v1/keys", json=body, headers=studio)
    assert made.status_code == 201 and made.json()["agency"] is True
    reader = {"Authorization": f"Bearer {made.json()['key']}"}
    north = await client.get("/v1/recipes", headers=acting(reader, "north-outfitters"))
    assert north.status_code == 200
    write = await client.post(
        "/v1/recipes", json=recipe(id="x"), headers=acting(reader, "north-outfitters")
    )
    assert write.status_code == 403  # its scopes hold in every workspace it acts in


async def test_a_key_limited_to_a_store_sees_only_that_store(
    client: Client, onboarded: dict[str, Any], engine: Engine
) -> None:
    studio = onboarded["studio"]
    north = acting(studio, "north-outfitters")
    second = {"store_hash": "nn2", "access_token": GOOD_TOKEN}
    assert (await client.post("/v1/stores", json=second, headers=north)).status_code == 201
    body = {"name": "north's own", "scopes": ["read"], "stores": ["nnn"]}
    made = await client.post("/v1/keys", json=body, headers=north)
    assert made.status_code == 201, made.text
    assert made.json()["stores"] == ["nnn"]
    limited = {"Authorization": f"Bearer {made.json()['key']}"}
    for store in ("nnn", "nn2"):
        await engine.ingest(
            NewEvent(
                type="test.stock",
                workspace="north-outfitters",
                store=store,
                payload={"product": {"id": 1, "inventory_level": 0}},
            )
        )
    await engine.drain()
    stores = (await client.get("/v1/stores", headers=limited)).json()["data"]
    assert [s["store_hash"] for s in stores] == ["nnn"]
    assert (await client.get("/v1/stores/nn2", headers=limited)).status_code == 404
    assert (await client.get("/v1/stores/nnn", headers=limited)).status_code == 200
    events = (await client.get("/v1/events", headers=limited)).json()["data"]
    assert {e["store"] for e in events} == {"nnn"}
    every = (await client.get("/v1/events", headers=north)).json()["data"]
    assert {e["store"] for e in every} == {"nn2", "nnn"}
    hidden = next(e["id"] for e in every if e["store"] == "nn2")
    assert (await client.get(f"/v1/events/{hidden}", headers=limited)).status_code == 404
    runs = (await client.get("/v1/runs", headers=limited)).json()["data"]
    assert {r["store"] for r in runs} == {"nnn"}
    everything = (await client.get("/v1/runs", headers=north)).json()["data"]
    hidden_run = next(r["id"] for r in everything if r["store"] == "nn2")
    assert (await client.get(f"/v1/runs/{hidden_run}", headers=limited)).status_code == 404
    for store in ("nnn", "nn2"):
        body = recipe(id=f"for-{store}", store=store)
        assert (await client.post("/v1/recipes", json=body, headers=north)).status_code == 201
    listed = (await client.get("/v1/recipes", headers=limited)).json()["data"]
    assert [r["id"] for r in listed] == ["for-nnn"]  # not nn2's, nor the one for every store
    assert (await client.get("/v1/recipes/for-nnn", headers=limited)).status_code == 200
    for hidden_recipe in ("for-nn2", "north-outfitters-alert"):
        shown = await client.get(f"/v1/recipes/{hidden_recipe}", headers=limited)
        assert shown.status_code == 404, hidden_recipe
    for path in ("/v1/secrets", "/v1/workspace", "/v1/hooks", "/v1/audit", "/v1/usage"):
        refused = await client.get(path, headers=limited)
        assert (refused.status_code, error_of(refused)["code"]) == (403, "store_limited_key"), path
    both = {"name": "bad", "scopes": ["read"], "stores": ["nnn"], "agency": True}
    assert (await client.post("/v1/keys", json=both, headers=studio)).status_code == 422


async def test_the_cli_makes_an_agency_key(
    client: Client,
    api_db: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="sous")
    register(parser.add_subparsers(dest="command"))
    argv = ["keys", "create", "--workspace", "Studio", "--agency", "--database-url", api_db.url]
    args = parser.parse_args(argv)
    monkeypatch.setattr("sous.migrate.upgrade", lambda engine: None)
    assert args.handler(args) == 0
    key = {"Authorization": f"Bearer {capsys.readouterr().out.strip()}"}
    made = await client.post("/v1/workspaces", json={"name": "Client One"}, headers=key)
    assert (made.status_code, made.json()["agency"]) == (201, "studio")
    client_argv = ["keys", "create", "--workspace", "client-one", "--agency"]
    args = parser.parse_args([*client_argv, "--database-url", api_db.url])
    assert args.handler(args) == 2  # a client workspace cannot be an agency
    assert "client workspace" in capsys.readouterr().err
