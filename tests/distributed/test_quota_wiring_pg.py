"""The BigCommerce connector shares its quota budget through PostgreSQL whenever the engine's
database is PostgreSQL (and keeps it in memory on SQLite): its requests are counted in
``sous_quota_budget``, a store's health reads the shared state, and stopping the connector
closes the budget's connection."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from connectors.bigcommerce.ratelimit import MemoryQuotaBudget
from connectors.bigcommerce.ratelimit_pg import PostgresQuotaBudget
from connectors.bigcommerce.simulator import SimulatorConfig, create_simulator, simulator_of
from connectors.bigcommerce.wiring import setup
from engine import Engine
from engine.clock import ManualClock
from engine.model.ids import new_id
from engine.registry import Registry
from engine.store.db import Database
from engine.store.models import StoreRow
from engine.store.vault import Cipher
from sous.container import connectors
from sous.migrate import upgrade

SECRET = "wiring-test-key"


def connect_demo_store(db: Database, clock: ManualClock) -> None:
    cipher = Cipher(SECRET)
    with db.session() as s:
        s.add(
            StoreRow(
                id=new_id("sto"),
                workspace_id="ws",
                store_hash="sousdemo",
                api_base_url="http://sim/stores/{store_hash}",
                access_token_enc=cipher.encrypt("sim-demo-token"),
                webhook_secret_enc=cipher.encrypt("unused"),
                created_at=clock.now(),
            )
        )
        s.commit()


async def one_request(db: Database) -> tuple[object, dict[str, object] | None]:
    """Start the connector on ``db``, send one request to the simulator through it, and
    return its budget and the store's health (the connector stopped again)."""
    clock = ManualClock()
    connect_demo_store(db, clock)
    app = create_simulator(SimulatorConfig(clock=clock))
    engine = Engine(db, Registry(connectors()), clock=clock)
    async with contextlib.AsyncExitStack() as stack:
        runtime = await setup(
            engine,
            SECRET,
            stack,
            public_base_url=lambda: "http://127.0.0.1:1",
            transport=httpx.ASGITransport(app),
        )
        handle = await runtime.stores.get("ws", "sousdemo")
        await handle.client.request("GET", "catalog/products", params={"limit": 1})
        budget = runtime.stores.budget
        if isinstance(budget, PostgresQuotaBudget):
            await budget.flush()
        await handle.client.request("GET", "catalog/products", params={"limit": 1})
        if isinstance(budget, PostgresQuotaBudget):
            await budget.flush()
        health = runtime.health("ws", "sousdemo")
    await simulator_of(app).aclose()
    return budget, health


@pytest.mark.postgres
async def test_on_postgresql_the_budget_is_shared_and_closed_on_stop(pg_db: Database) -> None:
    budget, health = await one_request(pg_db)
    assert isinstance(budget, PostgresQuotaBudget)
    assert budget._conn is None  # closed when the connector stopped
    assert health is not None
    quota = health["quota"]
    assert isinstance(quota, dict)
    assert quota["limit"] == 150
    assert quota["left"] == 148  # as the store said after the second request
    with pg_db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT requests, quota FROM sous_quota_budget WHERE store_hash = 'sousdemo'")
        ).one()
    assert tuple(row) == (2, 150)


async def test_on_sqlite_the_budget_stays_in_memory(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'one.db'}")
    upgrade(db.engine)
    try:
        budget, health = await one_request(db)
    finally:
        db.dispose()
    assert isinstance(budget, MemoryQuotaBudget)
    assert health is not None
    assert health["quota"] == {
        "limit": 150,
        "left": 148,
        "in_flight": 0,
        "queued": 0,
        "paused_for": 0.0,
    }


@pytest.mark.postgres
def test_sous_migrate_creates_the_shared_budget_tables(pg_db: Database) -> None:
    with pg_db.engine.begin() as conn:
        conn.execute(text("DROP TABLE sous_quota_lease, sous_quota_budget"))
    upgrade(pg_db.engine)
    upgrade(pg_db.engine)  # again: nothing to do
    with pg_db.engine.connect() as conn:
        found = conn.execute(
            text("SELECT to_regclass('sous_quota_budget'), to_regclass('sous_quota_lease')")
        ).one()
    assert tuple(map(str, found)) == ("sous_quota_budget", "sous_quota_lease")
