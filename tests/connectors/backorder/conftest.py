"""A shop for the backorder tests: the store simulator served by uvicorn on a loopback port,
a client per store through a small ClientProvider, the Backorders service on one ManualClock
(shared with the simulator, so order dates and ETAs agree), and the events it sends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlmodel import SQLModel

import connectors.backorder.models  # noqa: F401  (registers the tables)
from connectors.backorder.config import BackorderSettings, ClientProvider
from connectors.backorder.events import TRIGGERS
from connectors.backorder.service import Backorders
from connectors.bigcommerce.client import BigCommerceClient, RetryPolicy
from connectors.bigcommerce.simulator import SimulatorConfig, create_simulator, simulator_of
from connectors.bigcommerce.simulator.state import Store
from engine.clock import ManualClock
from engine.context import ActionContext, Services
from engine.errors import NotFoundError
from engine.model.events import Event, NewEvent
from engine.store.db import Database
from tests.servers import serve

FAST = RetryPolicy(read_delays=(), write_delays=(), network_delays=(0.05,))

SCRIPTS = "/v3/content/scripts"


class Clients:
    """A ClientProvider over the simulator: one client per known store hash."""

    def __init__(self) -> None:
        self.by_store: dict[str, BigCommerceClient] = {}

    def add(self, store: str, client: BigCommerceClient) -> None:
        self.by_store[store] = client

    async def client(self, workspace: str, store: str) -> BigCommerceClient:
        if workspace != "default" or store not in self.by_store:
            raise NotFoundError("store", store)
        return self.by_store[store]

    async def aclose(self) -> None:
        for client in self.by_store.values():
            await client.aclose()


@dataclass
class Shop:
    clock: ManualClock
    url: str
    store: Store
    http: httpx.AsyncClient
    clients: Clients
    service: Backorders
    services: Services
    events: list[NewEvent] = field(default_factory=list)

    @property
    def hash(self) -> str:
        return self.store.store_hash

    async def emit(self, new: NewEvent) -> None:
        """Keep the event, after checking its payload against the trigger's published model."""
        spec = next(t for t in TRIGGERS if t.type == new.type)
        assert spec.payload is not None
        spec.payload.model_validate(new.payload)
        assert new.dedup_key and len(new.dedup_key) <= 200
        assert (new.workspace, new.store) == ("default", self.hash)
        self.events.append(new)

    def sent(self, type_: str) -> list[dict[str, Any]]:
        """Payloads of the events of one type, deduplicated by key as the inbox would."""
        seen: dict[str, dict[str, Any]] = {}
        for new in self.events:
            if new.type == type_ and (new.dedup_key or "") not in seen:
                seen[new.dedup_key or str(len(seen))] = new.payload
        return list(seen.values())

    def product_id(self, name: str) -> int:
        return next(p.id for p in self.store.products.values() if p.name == name)

    def variant_id(self, sku: str) -> int:
        return next(v.id for v in self.store.variants.values() if v.sku == sku)

    async def product(self, product_id: int) -> dict[str, Any]:
        client = await self.clients.client("default", self.hash)
        return await client.get_product(product_id, include="variants,custom_fields")

    async def buy(
        self,
        product_id: int,
        quantity: int = 1,
        variant_id: int | None = None,
        customer_id: int = 0,
    ) -> httpx.Response:
        line = {"product_id": product_id, "quantity": quantity, "variant_id": variant_id}
        url = f"{self.url}/_sim/stores/{self.hash}/orders"
        return await self.http.post(url, json={"lines": [line], "customer_id": customer_id})

    async def set_stock(self, product_id: int, level: int, variant_id: int | None = None) -> None:
        body = {"product_id": product_id, "level": level, "variant_id": variant_id}
        response = await self.http.put(f"{self.url}/_sim/stores/{self.hash}/stock", json=body)
        assert response.status_code == 200, response.text

    async def order_event(self, order_id: int) -> dict[str, Any]:
        """The order as ``bigcommerce.order.*`` events carry it (with its lines)."""
        client = await self.clients.client("default", self.hash)
        order = await client.get_order(order_id)
        return {**order, "products": await client.get_order_products(order_id)}

    def requests(self, method: str | None = None) -> list[Any]:
        """The store requests about products (the storefront script's are left out: they
        are the subject of tests/connectors/backorder/test_script.py)."""
        return [
            r
            for r in self.store.requests
            if (method is None or r.method == method) and not r.path.startswith(SCRIPTS)
        ]

    def script_requests(self) -> list[Any]:
        return [r for r in self.store.requests if r.path.startswith(SCRIPTS)]

    def forget_requests(self) -> None:
        self.store.reset_log()

    def ctx(self, step: str = "hold", run: str = "run_1") -> ActionContext:
        now = self.clock.now()
        event = Event(
            "evt_1",
            "bigcommerce.product.out_of_stock",
            {},
            "default",
            self.hash,
            "webhook",
            "k",
            now,
            now,
        )
        return ActionContext(
            run_id=run, step_id=step, recipe_uid="rcp_1", workspace="default", store=self.hash,
            event=event, clock=self.clock, services=self.services, emit=self.emit,
        )  # fmt: skip


@pytest.fixture
def db(db: Database) -> Database:
    SQLModel.metadata.create_all(db.engine)
    return db


@pytest.fixture
def settings() -> BackorderSettings:
    return BackorderSettings()


@pytest.fixture
async def shop(
    db: Database, clock: ManualClock, settings: BackorderSettings
) -> AsyncIterator[Shop]:
    app = create_simulator(SimulatorConfig(clock=clock, seed=False, quota=10_000))
    sim = simulator_of(app)
    store = sim.add_store(seed=True, name="Backorder shop")
    clients = Clients()
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(serve(app))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        base = f"{url}/stores/{{store_hash}}"
        clients.add(
            store.store_hash,
            BigCommerceClient(store.store_hash, store.access_token, base_url=base, retry=FAST),
        )
        stack.push_async_callback(clients.aclose)
        stack.push_async_callback(sim.aclose)
        service = Backorders(db, clients, clock, settings)
        services = Services()
        services.add(db, Database)
        services.add(service)
        services.add(clients, ClientProvider)
        yield Shop(clock, url, store, http, clients, service, services)
