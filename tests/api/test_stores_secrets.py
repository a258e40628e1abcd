"""Stores (connected, verified, token encrypted, hooks called) and secrets (never returned)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import select

from engine import Engine
from engine.model.events import NewEvent
from engine.store.db import Database
from engine.store.models import CredentialRow, StoreRow
from sous.container import Container
from tests.api.conftest import GOOD_TOKEN, StoreDouble, error_of

Client = httpx.AsyncClient
Headers = dict[str, str]


def connect(client: Client, headers: Headers, **body: Any) -> Any:
    return client.post(
        "/v1/stores",
        json={"store_hash": "abc123", "access_token": GOOD_TOKEN, **body},
        headers=headers,
    )


async def test_connect_verifies_and_keeps_the_token_encrypted(
    client: Client, admin: Headers, api_db: Database
) -> None:
    made = await connect(client, admin)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["name"] == "Acme Outdoor"
    assert body["status"] == "active"
    assert body["api_base_url"] == "http://bc.test/stores/abc123"
    assert body["info"] == {
        "store": {"id": "abc123", "name": "Acme Outdoor", "domain": "acme.example"}
    }
    assert GOOD_TOKEN not in made.text
    with api_db.session() as s:
        row = s.exec(select(StoreRow)).one()
    assert GOOD_TOKEN not in row.access_token_enc
    assert row.webhook_secret_enc
    again = await connect(client, admin)
    assert again.status_code == 409


async def test_refused_and_unreachable_stores_are_not_connected(
    client: Client, admin: Headers
) -> None:
    refused = await connect(client, admin, access_token="wrong")
    assert refused.status_code == 422
    assert error_of(refused)["details"] == [
        {"path": "/access_token", "message": "the store refused this access token"}
    ]
    down = await connect(client, admin, store_hash="down")
    assert down.status_code == 502
    assert (await client.get("/v1/stores", headers=admin)).json()["data"] == []


async def test_only_bigcommerce_or_allowed_hosts_are_called(client: Client, admin: Headers) -> None:
    for url in (
        "http://169.254.169.254/latest",
        "https://evil.example/stores/abc123",
        "http://api.bigcommerce.com/stores/x",
    ):
        refused = await connect(client, admin, api_base_url=url)
        assert refused.status_code == 422, url
        assert error_of(refused)["details"][0]["path"] == "/api_base_url"


@pytest.fixture
def hooks(container: Container) -> list[dict[str, Any]]:
    health = {
        "hooks_active": 3,
        "hooks_expected": 4,
        "quota": {"left": 140, "per_30s": 150},
        "plan": "standard",
    }
    stores = StoreDouble({"created": ["store/product/inventory/updated"]}, health=health)
    container.stores = stores
    return stores.calls


async def test_webhook_registration_and_health_come_from_the_connector(
    client: Client, admin: Headers, hooks: list[dict[str, Any]], engine: Engine
) -> None:
    made = (await connect(client, admin)).json()
    assert made["info"]["webhooks"] == {"created": ["store/product/inventory/updated"]}
    call = hooks[0]
    assert call["store_hash"] == "abc123"
    assert call["access_token"] == GOOD_TOKEN
    assert len(call["webhook_secret"]) > 30
    await engine.ingest(NewEvent(type="test.stock", payload={}, store="abc123"))
    shown = (await client.get("/v1/stores/abc123", headers=admin)).json()
    assert shown["id"] == made["id"]
    assert shown["health"]["hooks_active"] == 3
    assert shown["health"]["hooks_ok"] is False
    assert shown["health"]["quota"]["left"] == 140
    assert shown["health"]["details"] == {"plan": "standard"}
    assert shown["health"]["last_event_at"] == "2026-11-27T09:00:00Z"
    by_id = await client.get(f"/v1/stores/{made['id']}", headers=admin)
    assert by_id.json()["store_hash"] == "abc123"
    gone = await client.delete(f"/v1/stores/{made['id']}", headers=admin)
    assert gone.status_code == 204
    assert hooks[-1] == {"unregistered": {"workspace": "default", "store_hash": "abc123"}}
    assert (await client.get("/v1/stores/abc123", headers=admin)).status_code == 404


async def test_failed_webhook_registration_is_recorded(
    client: Client, admin: Headers, container: Container
) -> None:
    container.stores = StoreDouble(RuntimeError("hooks API down"))
    made = await connect(client, admin)
    assert made.status_code == 201
    assert made.json()["status"] == "webhooks_failed"
    assert made.json()["info"]["webhooks"] == {"error": "RuntimeError: hooks API down"}


async def test_stores_list_pages(client: Client, admin: Headers) -> None:
    for store in ("aaa", "bbb", "ccc"):
        await connect(client, admin, store_hash=store)
    first = (await client.get("/v1/stores?limit=2", headers=admin)).json()
    rest = (
        await client.get(f"/v1/stores?limit=2&cursor={first['next_cursor']}", headers=admin)
    ).json()
    assert [s["store_hash"] for s in first["data"] + rest["data"]] == ["ccc", "bbb", "aaa"]
    assert rest["next_cursor"] is None


async def test_secrets_are_stored_encrypted_and_never_returned(
    client: Client, admin: Headers, api_db: Database
) -> None:
    put = await client.put("/v1/secrets/SMTP_PASSWORD", json={"value": "hunter2"}, headers=admin)
    assert put.status_code == 204
    listed = await client.get("/v1/secrets", headers=admin)
    assert listed.json() == {"data": [{"name": "SMTP_PASSWORD"}], "next_cursor": None}
    assert "hunter2" not in listed.text
    with api_db.session() as s:
        assert "hunter2" not in s.exec(select(CredentialRow)).one().value_enc
    bad = await client.put("/v1/secrets/not-a-name", json={"value": "x"}, headers=admin)
    assert bad.status_code == 422
    assert error_of(bad)["details"][0]["path"] == "path.name"
    assert (await client.delete("/v1/secrets/SMTP_PASSWORD", headers=admin)).status_code == 204
    assert (await client.delete("/v1/secrets/SMTP_PASSWORD", headers=admin)).status_code == 404
