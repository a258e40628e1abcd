"""Stock transitions derived once across processes: two normalisers (two worker processes, each
with its own snapshot cache, engine and connections) on one PostgreSQL database, taking turns
on the deliveries of one product, derive each transition once, as one process does."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from connectors.bigcommerce.models import Snapshot, Snapshots, WriteLog
from connectors.bigcommerce.normalize import NORMALIZE, Normalizer
from engine import Engine, EngineSettings
from engine.clock import ManualClock
from engine.context import Services
from engine.model.events import Event
from engine.queue.base import Job
from engine.registry import Registry
from engine.store.db import Database
from engine.store.models import EventRow
from sous.container import connectors

pytestmark = pytest.mark.postgres

PID = 7
STORE = "sto_1"


class Shelf:
    """The store's product as a read returns it, changed by the test between reads."""

    def __init__(self) -> None:
        self.level = 3
        self.stamp = "Fri, 27 Nov 2026 10:00:00 +0000"

    async def get(self, pid: int) -> dict[str, Any]:
        return {
            "id": pid, "name": "Tote", "inventory_level": self.level,
            "inventory_warning_level": 0, "inventory_tracking": "product",
            "date_modified": self.stamp, "variants": [],
        }  # fmt: skip


@dataclass
class Worker:
    normalizer: Normalizer
    db: Database


def worker(url: str, clock: ManualClock, shelf: Shelf) -> Worker:
    db = Database(url)
    engine = Engine(
        db, Registry(connectors()), clock=clock, services=Services(),
        settings=EngineSettings(workers=1),
    )  # fmt: skip
    handle = SimpleNamespace(id=STORE, store_hash="abc", reader=shelf)

    async def get(_workspace: str, _store: str) -> Any:
        return handle

    stores: Any = SimpleNamespace(get=get)
    normalizer = Normalizer(engine, stores, Snapshots(db, clock), WriteLog(db, clock))
    return Worker(normalizer, db)


@pytest.fixture
def pair(pg_db: Database, pg_url: str) -> Iterator[tuple[Worker, Worker, Shelf, ManualClock]]:
    clock = ManualClock(datetime(2026, 11, 27, 10, tzinfo=UTC))
    shelf = Shelf()
    first, second = worker(pg_url, clock, shelf), worker(pg_url, clock, shelf)
    key = (STORE, "product", PID)
    seen = Snapshot(3, 0, True, stamp=shelf.stamp, read_at=clock.now())
    pg_db.run_sync(lambda tx: first.normalizer.snapshots.save(tx, {key: seen}))
    yield first, second, shelf, clock
    first.db.dispose()
    second.db.dispose()


def delivery(
    clock: ManualClock, n: int, scope: str, data: dict[str, Any], received: datetime | None = None
) -> Job:
    now = clock.now()
    payload = {"scope": scope, "data": data}
    event = Event(
        f"evt_{n}", "bigcommerce.webhook", payload, "default", "abc", "webhook", f"hook-{n}",
        now, received or now,
    )  # fmt: skip
    return Job(f"job_{n}", NORMALIZE, event.id, now, hint=event)


def sale(clock: ManualClock, n: int, delta: int, received: datetime | None = None) -> Job:
    data = {"type": "product", "id": PID, "inventory": {"product_id": PID, "value": delta}}
    return delivery(clock, n, "store/product/inventory/updated", data, received)


def update(clock: ManualClock, n: int) -> Job:
    return delivery(clock, n, "store/product/updated", {"type": "product", "id": PID})


def count(db: Database, type_: str) -> int:
    query = select(func.count()).select_from(EventRow).where(col(EventRow.type) == type_)
    return int(db.read_sync(lambda tx: tx.conn.execute(query).scalar_one()))


async def test_two_normalisers_derive_one_sell_out(
    pair: tuple[Worker, Worker, Shelf, ManualClock],
) -> None:
    a, b, shelf, clock = pair
    key = (STORE, "product", PID)
    # both processes have seen the product at 3 (each normalised a delivery of it before)
    assert a.normalizer.snapshots.get(key) == b.normalizer.snapshots.get(key)

    clock.advance(1)
    shelf.level, shelf.stamp = 0, "Fri, 27 Nov 2026 10:00:01 +0000"
    await a.normalizer.handle(sale(clock, 1, -3))  # the last three sold: out of stock
    clock.advance(1)
    shelf.stamp = "Fri, 27 Nov 2026 10:00:02 +0000"  # then a price change, still at 0
    await b.normalizer.handle(update(clock, 2))  # the other process still remembers 3

    assert count(a.db, "bigcommerce.product.out_of_stock") == 1
    assert count(a.db, "bigcommerce.product.inventory_changed") == 1
    assert count(a.db, "bigcommerce.product.updated") == 1
    assert b.normalizer.counts.get("snapshot_conflicts") == 1
    kept = b.normalizer.snapshots.get(key)
    assert kept is not None and (kept.level, kept.stamp) == (0, shelf.stamp)

    clock.advance(1)
    shelf.level, shelf.stamp = 5, "Fri, 27 Nov 2026 10:00:03 +0000"
    await a.normalizer.handle(sale(clock, 3, 5))  # restocked: the first one's cache is stale
    assert count(a.db, "bigcommerce.product.back_in_stock") == 1
    assert a.normalizer.counts.get("snapshot_conflicts") == 1
    assert count(a.db, "bigcommerce.product.inventory_changed") == 2


async def test_an_older_read_committed_later_derives_no_transition(
    pair: tuple[Worker, Worker, Shelf, ManualClock],
) -> None:
    a, b, shelf, clock = pair
    clock.advance(1)
    received = clock.now()
    early = await b.normalizer._fetch(await _raw(b, sale(clock, 1, -1)), (STORE, "product", PID))
    assert early[1] is not None and early[1]["inventory_level"] == 3  # before the sale landed
    clock.advance(1)
    shelf.level, shelf.stamp = 0, "Fri, 27 Nov 2026 10:00:02 +0000"
    await a.normalizer.handle(sale(clock, 2, -3))
    assert count(a.db, "bigcommerce.product.out_of_stock") == 1

    # the other process now handles a delivery its earlier read already covers: that read
    # started before the one the snapshot holds, so it must not bring the product back
    await b.normalizer.handle(sale(clock, 1, -1, received - timedelta(seconds=1)))
    assert count(a.db, "bigcommerce.product.back_in_stock") == 0
    assert count(a.db, "bigcommerce.product.out_of_stock") == 1


async def _raw(w: Worker, job: Job) -> Any:
    raw = await w.normalizer._raw(job.hint)
    assert raw is not None
    return raw
