"""API keys: authentication, scopes, and the keys resource itself; the keys CLI."""

from __future__ import annotations

import argparse

import httpx
import pytest
from sqlmodel import select

from api.cli_keys import register
from api.tables import ApiKeyRow
from engine.store.db import Database
from tests.api.conftest import RECIPE, KeyFactory, error_of

Client = httpx.AsyncClient

# Every endpoint that changes something, with a body it would accept, and the scope it needs.
WRITES = [
    ("POST", "/v1/recipes", RECIPE, "write"),
    ("PUT", "/v1/recipes/sold-out-alert", {**RECIPE, "version": 1}, "write"),
    ("POST", "/v1/recipes/sold-out-alert/enable", None, "write"),
    ("POST", "/v1/recipes/sold-out-alert/disable", None, "write"),
    ("POST", "/v1/recipes/sold-out-alert/rollback", {"version": 1}, "write"),
    ("DELETE", "/v1/recipes/sold-out-alert", None, "write"),
    ("POST", "/v1/events", {"type": "custom.x", "payload": {}}, "write"),
    ("POST", "/v1/runs/run_x/replay", {}, "write"),
    ("POST", "/v1/runs/run_x/release", None, "write"),
    ("POST", "/v1/runs/run_x/discard", None, "write"),
    ("POST", "/v1/runs/run_x/cancel", None, "write"),
    ("POST", "/v1/stores", {"store_hash": "abc", "access_token": "good-token"}, "admin"),
    ("DELETE", "/v1/stores/abc", None, "admin"),
    ("PUT", "/v1/secrets/SMTP", {"value": "x"}, "admin"),
    ("DELETE", "/v1/secrets/SMTP", None, "admin"),
    ("POST", "/v1/keys", {"name": "k", "scopes": ["read"]}, "admin"),
    ("GET", "/v1/keys", None, "admin"),
    ("DELETE", "/v1/keys/key_x", None, "admin"),
    ("PATCH", "/v1/workspace", {"name": "New"}, "admin"),
]


async def test_missing_malformed_unknown_and_revoked_keys_are_401(
    client: Client, admin: dict[str, str]
) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer sous_nope"}):
        response = await client.get("/v1/recipes", headers=headers)
        assert response.status_code == 401, headers
        assert error_of(response)["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    made = (
        await client.post("/v1/keys", json={"name": "temp", "scopes": ["read"]}, headers=admin)
    ).json()
    temp = {"Authorization": f"Bearer {made['key']}"}
    assert (await client.get("/v1/recipes", headers=temp)).status_code == 200
    assert (await client.delete(f"/v1/keys/{made['id']}", headers=admin)).status_code == 204
    assert (await client.get("/v1/recipes", headers=temp)).status_code == 401


@pytest.mark.parametrize(("method", "path", "body", "needs"), WRITES)
async def test_scopes_are_enforced(
    client: Client, make_key: KeyFactory, method: str, path: str, body: object, needs: str
) -> None:
    weaker = ["read"] if needs == "write" else ["read", "write"]
    response = await client.request(method, path, json=body, headers=make_key("default", *weaker))
    assert response.status_code == 403, response.text
    assert error_of(response)["code"] == "forbidden"
    allowed = await client.request(method, path, json=body, headers=make_key("default", needs))
    assert allowed.status_code != 403, allowed.text


async def test_keys_are_listed_without_the_key_and_stored_hashed(
    client: Client, admin: dict[str, str], api_db: Database
) -> None:
    made = await client.post(
        "/v1/keys", json={"name": "front end", "scopes": ["write", "read"]}, headers=admin
    )
    assert made.status_code == 201
    body = made.json()
    assert body["key"].startswith("sous_")
    assert len(body["key"]) > 40
    assert body["scopes"] == ["read", "write"]
    assert body["key"].startswith(body["prefix"])
    listed = (await client.get("/v1/keys", headers=admin)).json()["data"]
    assert {k["name"] for k in listed} == {"front end", "test"}
    assert all("key" not in k for k in listed)
    with api_db.session() as s:
        stored = s.exec(select(ApiKeyRow).where(ApiKeyRow.id == body["id"])).one()
    assert body["key"] not in stored.model_dump_json()
    bad = await client.post("/v1/keys", json={"name": "x", "scopes": ["root"]}, headers=admin)
    assert bad.status_code == 422
    assert error_of(bad)["details"][0]["path"].startswith("/scopes/0")


async def test_keys_cli_creates_a_workspace_and_a_working_key(
    client: Client,
    api_db: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="sous")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "keys",
            "create",
            "--workspace",
            "Acme Shop",
            "--scope",
            "read",
            "--database-url",
            api_db.url,
        ]
    )
    monkeypatch.setattr("sous.migrate.upgrade", lambda engine: None)
    assert args.handler(args) == 0
    key = capsys.readouterr().out.strip()
    workspace = await client.get("/v1/workspace", headers={"Authorization": f"Bearer {key}"})
    assert workspace.json()["id"] == "acme-shop"
    assert workspace.json()["name"] == "Acme Shop"
    refused = await client.post(
        "/v1/events", json={"type": "custom.x"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert refused.status_code == 403


async def test_workspace_shows_counts_and_can_be_renamed(
    client: Client, admin: dict[str, str]
) -> None:
    await client.post("/v1/recipes", json=RECIPE, headers=admin)
    shown = (await client.get("/v1/workspace", headers=admin)).json()
    assert shown["id"] == "default"
    assert shown["recipes"] == 1
    assert shown["stores"] == 0
    renamed = await client.patch("/v1/workspace", json={"name": "Acme"}, headers=admin)
    assert renamed.json()["name"] == "Acme"
