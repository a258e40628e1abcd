"""A store really connected through the API (the app over HTTP, the BigCommerce connector wired
as in production, the store simulator on a loopback port): its health shows how many of Sous's
webhooks are active and whether all it needs are."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from sqlmodel import SQLModel

import api.tables  # noqa: F401  (registers the api_key table)
from api.app import create_app
from api.deps import Sandbox
from api.keys import create_key
from connectors.bigcommerce.simulator import simulator_of
from connectors.bigcommerce.simulator.state import Store
from connectors.bigcommerce.stores import SCOPES
from connectors.bigcommerce.wiring import BigCommerceRuntime
from engine.registry import Registry
from engine.store.db import Database
from sous.container import connectors
from sous.wiring import wire_bigcommerce
from tests.connectors.bigcommerce.harness import Servers, container_for, servers_up


@pytest_asyncio.fixture
async def servers() -> AsyncIterator[Servers]:
    async with servers_up() as up:
        yield up


@contextlib.asynccontextmanager
async def connected(servers: Servers, tmp_path: Path) -> AsyncIterator[tuple[Any, ...]]:
    """The Sous app serving ``servers.sous_url``, a simulated store, an admin key's headers."""
    db = Database(f"sqlite:///{tmp_path / 'sous.db'}")
    db.create_all()
    SQLModel.metadata.create_all(db.engine)
    container = container_for(db, servers.clock, Registry(list(connectors())))
    container.public_base_url = servers.sous_url
    store = simulator_of(servers.sim_app).add_store(seed=True, name="Health shop")
    async with contextlib.AsyncExitStack() as stack:
        runtime = await wire_bigcommerce(container, stack)
        sandbox = Sandbox(f"{servers.sim_url}/stores/{{store_hash}}")
        servers.switch.app = create_app(container, sandbox=sandbox)
        headers = {"Authorization": f"Bearer {create_key(db, 'acme', ['admin'], 'test')}"}
        yield runtime, store, headers
    db.dispose()


async def _show(servers: Servers, store: Store, headers: dict[str, str]) -> httpx.Response:
    return await servers.http.get(
        f"{servers.sous_url}/v1/stores/{store.store_hash}", headers=headers
    )


async def test_a_connected_store_shows_its_webhooks(servers: Servers, tmp_path: Path) -> None:
    async with connected(servers, tmp_path) as (runtime, store, headers):
        assert isinstance(runtime, BigCommerceRuntime)
        before = await _show(servers, store, headers)
        assert before.status_code == 404  # not connected yet
        body = {"store_hash": store.store_hash, "access_token": store.access_token}
        made = await servers.http.post(f"{servers.sous_url}/v1/stores", json=body, headers=headers)
        assert made.status_code == 201, made.text
        assert made.json()["status"] == "active"
        shown = await _show(servers, store, headers)
        assert shown.status_code == 200, shown.text
        health = shown.json()["health"]
        assert health["hooks_active"] == health["hooks_expected"] == len(SCOPES)
        assert health["hooks_ok"] is True
        assert health["quota"]["limit"] > 0
