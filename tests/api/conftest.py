"""The API through its front door: the real app over ASGI, a real SQLite database, an engine
with the recording connector, and a fake BigCommerce behind an injected transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlmodel import SQLModel

import api.tables  # noqa: F401  (registers the api_key table)
from api.app import create_app
from api.deps import Sandbox
from api.keys import create_key
from engine import Engine
from engine.clock import ManualClock
from engine.registry import Registry
from engine.store.db import Database
from sous.container import Container
from sous.settings import Settings

GOOD_TOKEN = "good-token"
SANDBOX_URL = "http://bc.test/stores/{store_hash}"

RECIPE: dict[str, Any] = {
    "id": "sold-out-alert",
    "name": "Tell staff when a product sells out",
    "description": "a stock alert",
    "trigger": {"type": "test.stock"},
    "conditions": [{"<=": [{"var": "product.inventory_level"}, 0]}],
    "actions": [
        {
            "id": "note",
            "use": "test.record",
            "with": {"message": "{{ product.name }} sold out", "count": 1},
        },
        {
            "id": "second",
            "use": "test.record",
            "with": {"message": "after {{ steps.note.echoed }}"},
        },
    ],
}


def recipe(**changes: Any) -> dict[str, Any]:
    return {**RECIPE, **changes}


def product(level: int) -> dict[str, Any]:
    return {"product": {"id": 77, "name": "Cat Eye Sunglasses", "inventory_level": level}}


def fake_bigcommerce(request: httpx.Request) -> httpx.Response:
    """``GET /stores/{hash}/v2/store``: 200 for the good token, else 401; store ``down`` is 503."""
    parts = request.url.path.strip("/").split("/")
    if parts[:1] != ["stores"] or parts[2:] != ["v2", "store"]:
        return httpx.Response(404, json={"title": "no such path"})
    if parts[1] == "down":
        return httpx.Response(503, json={"title": "maintenance"})
    if request.headers.get("X-Auth-Token") != GOOD_TOKEN:
        return httpx.Response(401, json={"title": "bad token"})
    return httpx.Response(
        200, json={"id": parts[1], "name": "Acme Outdoor", "domain": "acme.example", "secret": "x"}
    )


@pytest.fixture
def api_db(db: Database) -> Database:
    SQLModel.metadata.create_all(db.engine)
    return db


@pytest.fixture
def settings() -> Settings:
    return Settings(max_body_bytes=200_000, cors_origins=["https://app.example"])


@pytest.fixture
def container(
    api_db: Database,
    registry: Registry,
    engine: Engine,
    clock: ManualClock,
    settings: Settings,
) -> Container:
    return Container(settings, api_db, registry, engine, engine.services, clock)


@pytest.fixture
def app(container: Container) -> Any:
    return create_app(
        container, sandbox=Sandbox(SANDBOX_URL, transport=httpx.MockTransport(fake_bigcommerce))
    )


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sous.test") as http:
        yield http


KeyFactory = Callable[..., dict[str, str]]


@pytest.fixture
def make_key(api_db: Database) -> KeyFactory:
    """``make_key("acme", "read")`` → headers with a fresh key of that workspace and scopes."""

    def make(workspace: str = "default", *scopes: str) -> dict[str, str]:
        key = create_key(api_db, workspace, list(scopes or ("admin",)), "test")
        return {"Authorization": f"Bearer {key}"}

    return make


@pytest.fixture
def admin(make_key: KeyFactory) -> dict[str, str]:
    return make_key("default", "admin")


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "details", "request_id"} <= set(body["error"]), body
    return body["error"]  # type: ignore[no-any-return]


class StoreDouble:
    """A store connector (:class:`engine.StoreConnector`) that records what the API asks of it:
    ``registered`` is what ``register`` answers (or raises, if it is an exception)."""

    def __init__(
        self,
        registered: dict[str, Any] | Exception | None = None,
        *,
        health: dict[str, Any] | None = None,
        metrics: dict[str, dict[str, float]] | None = None,
    ) -> None:
        self.registered, self._health, self._metrics = registered, health, metrics or {}
        self.calls: list[dict[str, Any]] = []

    async def register(self, **store: Any) -> dict[str, Any] | None:
        self.calls.append(store)
        if isinstance(self.registered, Exception):
            raise self.registered
        return self.registered

    async def unregister(self, *, workspace: str, store_hash: str) -> None:
        self.calls.append({"unregistered": {"workspace": workspace, "store_hash": store_hash}})

    def health(self, workspace: str, store_hash: str) -> dict[str, Any] | None:
        return self._health

    def metrics(self) -> dict[str, dict[str, float]]:
        return self._metrics
