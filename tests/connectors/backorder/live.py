"""A live rig: the store simulator and Sous's BigCommerce webhook endpoint, each under uvicorn
on a loopback port, one ManualClock for both, the BigCommerce connector wired as in production
(``connectors.bigcommerce.wiring.setup``) and the backorder connector installed on top."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlmodel import SQLModel, col, select

from connectors.backorder import BackorderRuntime, Backorders, StoresClientProvider
from connectors.bigcommerce.simulator import SimulatorConfig, create_simulator, simulator_of
from connectors.bigcommerce.simulator.state import Store
from connectors.bigcommerce.stores import BigCommerceConfig
from engine import Engine, EngineSettings
from engine.authoring.loader import load_file
from engine.clock import ManualClock
from engine.context import Services
from engine.registry import Registry
from engine.store.db import Database
from engine.store.models import EventRow, StoreRow
from engine.store.vault import Cipher
from sous.container import Container, connectors
from sous.settings import Settings
from sous.wiring import wire_bigcommerce
from tests.fakes import Recorder, recording_connector
from tests.servers import serve

SECRET_KEY = "backorder-tests-secret-key"
WEBHOOK_SECRET = "whsec-backorder-0123456789"


@dataclass
class Rig:
    clock: ManualClock
    sim_app: Any
    sim_url: str
    store: Store
    engine: Engine
    backorders: BackorderRuntime
    http: httpx.AsyncClient

    @property
    def hash(self) -> str:
        return self.store.store_hash

    async def settle(self, limit: float = 20.0) -> None:
        """Wait until every webhook is delivered and Sous has done all it was asked to."""
        sim = simulator_of(self.sim_app)
        deadline = time.monotonic() + limit
        quiet = 0
        while quiet < 3:
            if time.monotonic() > deadline:
                raise AssertionError("the simulator and Sous did not settle in time")
            await asyncio.wait_for(sim.deliveries.settle(), limit)
            await self.backorders.settle()
            await self.engine.drain(limit)
            busy = (
                self.engine.queue.depth()
                or self.engine.workers.busy
                or sim.deliveries.pending
                or self.backorders.enqueuing
            )
            quiet = 0 if busy else quiet + 1
            await asyncio.sleep(0.005)

    async def checkout(self, product_id: int, quantity: int = 1) -> httpx.Response:
        line = {"product_id": product_id, "quantity": quantity}
        url = f"{self.sim_url}/_sim/stores/{self.hash}/orders"
        return await self.http.post(url, json={"lines": [line]})

    async def set_stock(self, product_id: int, level: int) -> None:
        url = f"{self.sim_url}/_sim/stores/{self.hash}/stock"
        response = await self.http.put(url, json={"product_id": product_id, "level": level})
        assert response.status_code == 200, response.text

    async def product(self, product_id: int) -> dict[str, Any]:
        headers = {"X-Auth-Token": self.store.access_token}
        url = f"{self.sim_url}/stores/{self.hash}/v3/catalog/products/{product_id}"
        response = await self.http.get(url, params={"include": "custom_fields"}, headers=headers)
        data: dict[str, Any] = response.json()["data"]
        return data

    def events(self, type_: str) -> list[EventRow]:
        with self.engine.db.session() as s:
            query = select(EventRow).where(EventRow.type == type_)
            return list(s.exec(query.order_by(col(EventRow.received_at))).all())

    def load(self, folder: Path, text: str) -> str:
        path = folder / f"recipe-{len(list(folder.glob('recipe-*.yaml')))}.yaml"
        path.write_text(text)
        result = load_file(path, self.engine.registry)
        assert result.errors == [], result.errors
        stored = self.engine.recipes.create(
            "default", result.recipes[0][1].document(), source=str(path)
        )
        self.engine.refresh(stored)
        return stored.uid


@contextlib.asynccontextmanager
async def live(tmp_path: Path, recorder: Recorder) -> AsyncIterator[Rig]:
    clock = ManualClock()
    db = Database(f"sqlite:///{tmp_path / 'sous.db'}")
    db.create_all()
    SQLModel.metadata.create_all(db.engine)
    sim_app = create_simulator(
        SimulatorConfig(clock=clock, seed=False, quota=10_000, webhook_workers=4)
    )
    sim = simulator_of(sim_app)
    store = sim.add_store(seed=True, name="Backorder shop")
    registry = Registry([*connectors(), recording_connector(recorder)])
    settings = Settings(database_url=db.url, secret_key=SECRET_KEY)
    services = Services()
    engine = Engine(
        db, registry, clock=clock, services=services, settings=EngineSettings(workers=4)
    )
    config = BigCommerceConfig(read_window=0.0, reconcile_interval=86400.0)
    container = Container(settings, db, registry, engine, services, clock, bigcommerce=config)
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        sim_url = await stack.enter_async_context(serve(sim_app))
        stack.push_async_callback(sim.aclose)
        sous_app = FastAPI()
        sous_url = await stack.enter_async_context(serve(sous_app))
        container.public_base_url = sous_url
        runtime = await wire_bigcommerce(container, stack)
        sous_app.include_router(runtime.router())
        base = f"{sim_url}/stores/{store.store_hash}"
        store_id = _insert_store(db, store, base, clock)
        services.add(db, Database)
        backorders = BackorderRuntime(
            engine, Backorders(db, StoresClientProvider(runtime.stores), clock)
        )
        backorders.install()
        await engine.start(workers=4)
        stack.push_async_callback(engine.stop)
        await runtime.register(
            workspace="default", store_id=store_id, store_hash=store.store_hash, api_base_url=base,
            access_token=store.access_token, webhook_secret=WEBHOOK_SECRET,
        )  # fmt: skip
        rig = Rig(clock, sim_app, sim_url, store, engine, backorders, http)
        yield rig
        await rig.settle()
        await backorders.stop()
    db.dispose()


def _insert_store(db: Database, store: Store, base: str, clock: ManualClock) -> str:
    cipher = Cipher(SECRET_KEY)
    row = StoreRow(
        id="sto_" + store.store_hash, workspace_id="default", store_hash=store.store_hash,
        name=store.name, api_base_url=base, access_token_enc=cipher.encrypt(store.access_token),
        webhook_secret_enc=cipher.encrypt(WEBHOOK_SECRET), created_at=clock.now(),
    )  # fmt: skip
    with db.session() as s:
        s.add(row)
        s.commit()
    return row.id
