"""A live rig for the connector tests: the store simulator and Sous's webhook endpoint, each
served by uvicorn on a loopback port, one ManualClock for both, and every request the connector
sends to the store recorded and checked against BigCommerce's OpenAPI documents."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlmodel import col, select

from connectors.bigcommerce import models as _tables  # noqa: F401  (registers the tables)
from connectors.bigcommerce.simulator import SimulatorConfig, create_simulator, simulator_of
from connectors.bigcommerce.simulator.state import Store
from connectors.bigcommerce.stores import SECRET_HEADER, BigCommerceConfig
from connectors.bigcommerce.wiring import BigCommerceRuntime
from engine import Engine, EngineSettings
from engine.authoring.loader import load_file
from engine.clock import ManualClock
from engine.context import ActionContext, Services
from engine.model.events import CausedBy, Event
from engine.model.ids import new_id
from engine.registry import Registry
from engine.store.db import Database
from engine.store.models import EventRow, MatchRow, RunRow, StoreRow
from engine.store.vault import Cipher
from sous.container import Container, connectors
from sous.settings import Settings
from sous.wiring import wire_bigcommerce
from tests.connectors.bigcommerce.openapi_requests import (
    SSL,
    RecordingTransport,
)
from tests.fakes import Recorder, recording_connector
from tests.servers import serve

SECRET_KEY = "tests-only-secret-key"


# -- the rig -----------------------------------------------------------------------------------


@dataclass
class Live:
    clock: ManualClock
    sim_url: str
    sous_url: str
    sim_store: Store
    store_id: str
    engine: Engine
    runtime: BigCommerceRuntime
    recorder: Recorder
    transport: RecordingTransport
    http: httpx.AsyncClient
    app: Any
    secret: str = "whsec-test-0123456789"
    recipes: dict[str, str] = field(default_factory=dict)

    @property
    def sim(self) -> Any:
        return simulator_of(self.app)

    @property
    def store_hash(self) -> str:
        return self.sim_store.store_hash

    async def settle(self, limit: float = 10.0) -> None:
        """Wait until the simulator has delivered everything and Sous has processed it."""
        deadline = time.monotonic() + limit
        quiet = 0
        while quiet < 3:
            if time.monotonic() > deadline:
                raise AssertionError("the simulator and Sous did not settle in time")
            await asyncio.wait_for(self.sim.deliveries.settle(), limit)
            await self.engine.drain(limit)
            engine = self.engine
            busy = self.sim.deliveries._active or engine.queue.due() or engine.workers.busy
            quiet = 0 if busy else quiet + 1
            await asyncio.sleep(0.005)

    async def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(
            method, f"{self.sim_url}/_sim/stores/{self.store_hash}{path}", **kwargs
        )
        assert response.status_code < 400, response.text
        return response

    async def set_stock(self, product_id: int, level: int, variant_id: int | None = None) -> None:
        body = {"product_id": product_id, "level": level, "variant_id": variant_id}
        await self.control("PUT", "/stock", json=body)

    async def store_api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The store's own API as another app would call it (not through Sous)."""
        headers = {"X-Auth-Token": self.sim_store.access_token}
        url = f"{self.sim_url}/stores/{self.store_hash}{path}"
        return await self.http.request(method, url, headers=headers, **kwargs)

    def product(self, name: str) -> Any:
        return next(p for p in self.sim_store.products.values() if p.name == name)

    def events(self, type_: str) -> list[EventRow]:
        """Events of a type, oldest first."""
        with self.engine.db.session() as s:
            query = (
                select(EventRow)
                .where(EventRow.type == type_)
                .order_by(col(EventRow.received_at), text("rowid"))  # clock times can tie
            )
            return list(s.exec(query).all())

    def check_payloads(self) -> int:
        """Validate every typed event's payload against its trigger's model; return how many."""
        with self.engine.db.session() as s:
            rows = s.exec(
                select(EventRow).where(col(EventRow.type).startswith("bigcommerce."))
            ).all()
        checked = 0
        for row in rows:
            spec = self.engine.registry.triggers.get(row.type)
            if spec is not None and spec.payload is not None:
                spec.payload.model_validate(row.payload)
                checked += 1
        return checked

    def runs(self, recipe_uid: str | None = None) -> list[RunRow]:
        with self.engine.db.session() as s:
            query = select(RunRow)
            if recipe_uid:
                query = query.where(RunRow.recipe_uid == recipe_uid)
            return list(s.exec(query).all())

    def matches(self, event_id: str) -> list[MatchRow]:
        with self.engine.db.session() as s:
            return list(s.exec(select(MatchRow).where(MatchRow.event_id == event_id)).all())

    def load(self, tmp: Path, text: str) -> str:
        path = tmp / f"recipe{len(self.recipes)}.yaml"
        path.write_text(text)
        result = load_file(path, self.engine.registry)
        assert result.errors == [], result.errors
        stored = self.engine.recipes.create(
            "default", result.recipes[0][1].document(), source=str(path)
        )
        self.engine.refresh(stored)
        self.recipes[stored.recipe.id] = stored.uid
        return stored.uid

    def context(
        self, step: str = "s1", run: str = "run_test", store: str | None = None
    ) -> ActionContext:
        event = Event(
            id="evt_test", type="bigcommerce.product.updated", payload={}, workspace="default",
            store=self.store_hash, source="webhook", dedup_key="k", occurred_at=self.clock.now(),
            received_at=self.clock.now(), caused_by=None,
        )  # fmt: skip
        return ActionContext(
            run_id=run, step_id=step, recipe_uid="rcp_test", workspace="default",
            store=store or self.store_hash, event=event, clock=self.clock,
            services=self.engine.services, emit=_no_emit,
        )  # fmt: skip

    def writes(self, method: str | None = None, prefix: str = "") -> list[Any]:
        return [
            r for r in self.sim_store.requests
            if r.write and (method is None or r.method == method) and r.path.startswith(prefix)
        ]  # fmt: skip

    async def post_webhook(
        self,
        payload: Any,
        secret: str | None = None,
        store: str | None = None,
        message_id: str | None = None,
    ) -> httpx.Response:
        headers = {SECRET_HEADER: self.secret if secret is None else secret}
        if message_id is not None:
            headers["webhook-id"] = message_id
        url = f"{self.sous_url}/v1/webhooks/bigcommerce/{store or self.store_id}"
        return await self.http.post(url, json=payload, headers=headers)


async def _no_emit(_: Any) -> None:
    return None


def caused(row: EventRow) -> CausedBy | None:
    return CausedBy.from_dict(row.caused_by)


def insert_store(
    db: Database, *, store_hash: str, token: str, base_url: str, secret: str,
    workspace: str = "default",
) -> str:  # fmt: skip
    cipher = Cipher(SECRET_KEY)
    row = StoreRow(
        id=new_id("sto"), workspace_id=workspace, store_hash=store_hash, name="Test store",
        api_base_url=base_url, access_token_enc=cipher.encrypt(token),
        webhook_secret_enc=cipher.encrypt(secret), created_at=ManualClock().now(),
    )  # fmt: skip
    with db.session() as s:
        s.add(row)
        s.commit()
    return row.id


def container_for(
    db: Database,
    clock: ManualClock,
    registry: Registry,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Container:
    settings = Settings(database_url=db.url, secret_key=SecretStr(SECRET_KEY))
    services = Services()
    engine = Engine(
        db, registry, clock=clock, services=services, settings=EngineSettings(workers=4)
    )
    config = BigCommerceConfig(read_window=0.0, reconcile_interval=3600.0)
    return Container(
        settings,
        db,
        registry,
        engine,
        services,
        clock,
        bigcommerce=config,
        store_transport=transport,
    )


class Switch:
    """An ASGI app that forwards to whichever app the current test installed."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@dataclass
class Servers:
    """A simulator and a Sous endpoint on loopback ports, shared by the tests of a module."""

    clock: ManualClock
    sim_app: Any
    sim_url: str
    switch: Switch
    sous_url: str
    http: httpx.AsyncClient


@contextlib.asynccontextmanager
async def servers_up() -> AsyncIterator[Servers]:
    clock = ManualClock()
    hooks = httpx.AsyncHTTPTransport(verify=SSL)
    config = SimulatorConfig(
        clock=clock, seed=False, webhook_workers=4, webhook_timeout_s=5, webhook_transport=hooks
    )
    sim_app = create_simulator(config)
    switch = Switch()
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10, verify=SSL))
        sim_url = await stack.enter_async_context(serve(sim_app))
        sous_url = await stack.enter_async_context(serve(switch))
        stack.push_async_callback(simulator_of(sim_app).aclose)
        yield Servers(clock, sim_app, sim_url, switch, sous_url, http)


@contextlib.asynccontextmanager
async def live_rig(servers: Servers, tmp_path: Path, recorder: Recorder) -> AsyncIterator[Live]:
    """A fresh simulated store, database, engine and connector, wired to ``servers``."""
    clock = servers.clock
    db = Database(f"sqlite:///{tmp_path / 'sous.db'}")
    db.create_all()
    registry = Registry([*connectors(), recording_connector(recorder)])
    transport = RecordingTransport()
    store = simulator_of(servers.sim_app).add_store(seed=True, name="Test store")
    async with contextlib.AsyncExitStack() as stack:
        container = container_for(db, clock, registry, transport)
        container.public_base_url = servers.sous_url
        runtime = await wire_bigcommerce(container, stack)
        sous_app = FastAPI()
        sous_app.include_router(runtime.router())
        servers.switch.app = sous_app
        rig = Live(
            clock, servers.sim_url, servers.sous_url, store, "", container.engine, runtime,
            recorder, transport, servers.http, servers.sim_app,
        )  # fmt: skip
        base = f"{servers.sim_url}/stores/{store.store_hash}"
        rig.store_id = insert_store(
            db, store_hash=store.store_hash, token=store.access_token, base_url=base,
            secret=rig.secret,
        )  # fmt: skip
        await container.engine.start(workers=4)
        stack.push_async_callback(container.engine.stop)
        stack.push_async_callback(transport.aclose)
        await runtime.register(
            workspace="default", store_id=rig.store_id, store_hash=store.store_hash,
            api_base_url=base, access_token=store.access_token, webhook_secret=rig.secret,
        )  # fmt: skip
        yield rig
        await rig.settle()
        for hook in list(store.hooks.values()):  # nothing more for this test's endpoint
            hook.is_active = False
    db.dispose()
