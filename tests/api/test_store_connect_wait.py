"""Connecting a store does not wait on a store quota that holds its webhook registration: the
answer comes after ``REGISTER_WAIT`` with status ``webhooks_pending``, and the row is updated
when registration ends (unless the store was disconnected meanwhile)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlmodel import select

from api import connect as connect_module
from engine.store.db import Database
from engine.store.models import StoreRow
from sous.container import Container
from tests.api.conftest import GOOD_TOKEN, StoreDouble

Client = httpx.AsyncClient
Headers = dict[str, str]


class HeldStore(StoreDouble):
    """A connector whose registration waits until ``release`` is set (as it does on a quota
    that is used up until its window resets)."""

    def __init__(self, registered: dict[str, Any] | Exception) -> None:
        super().__init__(registered)
        self.release = asyncio.Event()

    async def register(self, **store: Any) -> dict[str, Any] | None:
        await self.release.wait()
        return await super().register(**store)


@pytest.fixture(autouse=True)
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connect_module, "REGISTER_WAIT", 0.2)


async def _connect(client: Client, admin: Headers) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    made = await client.post(
        "/v1/stores", json={"store_hash": "abc123", "access_token": GOOD_TOKEN}, headers=admin
    )
    return made, time.monotonic() - started


async def _settled(api_db: Database) -> StoreRow | None:
    for _ in range(100):
        await asyncio.sleep(0.02)
        if not connect_module._LATE:
            break
    with api_db.session() as s:
        return s.exec(select(StoreRow)).first()


async def test_held_registration_answers_pending_then_the_row_is_updated(
    client: Client, admin: Headers, container: Container, api_db: Database
) -> None:
    held = HeldStore({"created": 20})
    container.stores = held
    made, took = await _connect(client, admin)
    assert made.status_code == 201, made.text
    assert took < 5
    assert made.json()["status"] == "webhooks_pending"
    assert made.json()["info"]["webhooks"] == {"pending": True}
    shown = await client.get("/v1/stores/abc123", headers=admin)
    assert shown.json()["status"] == "webhooks_pending"
    held.release.set()
    row = await _settled(api_db)
    assert row is not None
    assert row.status == "active"
    assert row.info is not None and row.info["webhooks"] == {"created": 20}
    assert row.info["store"]["name"] == "Acme Outdoor"


async def test_a_late_failure_is_recorded(
    client: Client, admin: Headers, container: Container, api_db: Database
) -> None:
    held = HeldStore(RuntimeError("quota used up"))
    container.stores = held
    made, _ = await _connect(client, admin)
    assert made.json()["status"] == "webhooks_pending"
    held.release.set()
    row = await _settled(api_db)
    assert row is not None
    assert row.status == "webhooks_failed"
    assert row.info is not None
    assert row.info["webhooks"] == {"error": "RuntimeError: quota used up"}


async def test_a_store_disconnected_meanwhile_stays_disconnected(
    client: Client, admin: Headers, container: Container, api_db: Database
) -> None:
    held = HeldStore({"created": 20})
    container.stores = held
    made, _ = await _connect(client, admin)
    assert made.json()["status"] == "webhooks_pending"
    gone = await client.delete("/v1/stores/abc123", headers=admin)
    assert gone.status_code == 204
    held.release.set()
    assert await _settled(api_db) is None


async def test_a_prompt_registration_is_in_the_answer(
    client: Client, admin: Headers, container: Container
) -> None:
    container.stores = StoreDouble({"created": 20})
    made, _ = await _connect(client, admin)
    assert made.json()["status"] == "active"
    assert made.json()["info"]["webhooks"] == {"created": 20}
