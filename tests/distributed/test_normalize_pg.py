"""Stock transitions derived once across processes: two normalisers (two worker processes, each
with its own snapshot cache, engine and connections) on one PostgreSQL database, taking turns
on the deliveries of one product, derive each transition once, as one process does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from connectors.bigcommerce.client import Sends
from connectors.bigcommerce.models import Snapshot, Snapshots, WriteLog
from connectors.bigcommerce.normalize import NORMALIZE, Normalizer
from connectors.bigcommerce.stores import BigCommerceConfig
from connectors.bigcommerce.wiring import BigCommerceRuntime
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


class Reader:
    """One process's product reader of the shelf. Its requests may be held before they are
    sent (``sending``: the quota is spent) and their answers before they arrive
    (``answering``); a read sees the shelf as it is when its request is sent."""

    def __init__(self, shelf: Shelf, clock: ManualClock) -> None:
        self.shelf, self.clock = shelf, clock
        self.sending, self.answering = asyncio.Event(), asyncio.Event()
        self.sending.set()
        self.answering.set()
        self.requests = 0

    async def read(self, pid: int) -> tuple[datetime, dict[str, Any]]:
        await self.sending.wait()
        self.requests += 1
        sent, found = self.clock.now(), await self.shelf.get(pid)
        await self.answering.wait()
        return sent, found

    async def get(self, pid: int) -> dict[str, Any]:
        return (await self.read(pid))[1]


@dataclass
class Worker:
    normalizer: Normalizer
    db: Database
    reader: Reader


def worker(url: str, clock: ManualClock, shelf: Shelf) -> Worker:
    db = Database(url)
    engine = Engine(
        db, Registry(connectors()), clock=clock, services=Services(),
        settings=EngineSettings(workers=1),
    )  # fmt: skip
    reader = Reader(shelf, clock)
    handle = SimpleNamespace(id=STORE, store_hash="abc", reader=reader)

    async def get(_workspace: str, _store: str) -> Any:
        return handle

    stores: Any = SimpleNamespace(get=get)
    normalizer = Normalizer(engine, stores, Snapshots(db, clock), WriteLog(db, clock))
    return Worker(normalizer, db, reader)


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
    assert "snapshot_conflicts" not in b.normalizer.counts  # its stale hint was read again
    kept = b.normalizer.snapshots.get(key)
    assert kept is not None and (kept.level, kept.stamp) == (0, shelf.stamp)

    clock.advance(1)
    shelf.level, shelf.stamp = 5, "Fri, 27 Nov 2026 10:00:03 +0000"
    await a.normalizer.handle(sale(clock, 3, 5))  # restocked: the first one's cache is stale
    assert count(a.db, "bigcommerce.product.back_in_stock") == 1
    assert "snapshot_conflicts" not in a.normalizer.counts
    assert count(a.db, "bigcommerce.product.inventory_changed") == 2


async def test_a_snapshot_changed_between_derivation_and_commit_derives_again(
    pair: tuple[Worker, Worker, Shelf, ManualClock],
) -> None:
    a, b, shelf, clock = pair
    clock.advance(1)
    shelf.level, shelf.stamp = 0, "Fri, 27 Nov 2026 10:00:01 +0000"
    refresh = b.normalizer.snapshots.refresh

    async def then_the_other(store_id: str, pid: int, kinds: Any) -> None:
        await refresh(store_id, pid, kinds)
        if not a.normalizer.counts:  # once: a commits after b read the snapshots
            await a.normalizer.handle(sale(clock, 1, -3))

    b.normalizer.snapshots.refresh = then_the_other  # type: ignore[method-assign,assignment]
    await b.normalizer.handle(sale(clock, 2, -3))  # both saw the sell-out: one commits it
    assert b.normalizer.counts.get("snapshot_conflicts") == 1
    assert b.normalizer.counts.get("derived_again") == 1
    assert count(a.db, "bigcommerce.product.out_of_stock") == 1
    assert count(a.db, "bigcommerce.product.inventory_changed") == 1


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


async def test_a_read_held_by_the_quota_is_as_old_as_its_sending(
    pair: tuple[Worker, Worker, Shelf, ManualClock],
) -> None:
    """One sell-out, one run: a read asked for first but sent last (it waited for the quota)
    is the newest, and another process's read sent before it, even if committed after it,
    brings the product back to no level it had."""
    a, b, shelf, clock = pair
    shelf.level = 1  # the last unit on the shelf
    clock.advance(1)
    a.reader.sending.clear()  # the quota is spent: a's read waits before it is sent
    first = asyncio.create_task(a.normalizer.handle(sale(clock, 1, -2)))
    await _settle()
    clock.advance(1)
    b.reader.answering.clear()  # b's read is sent now (the shelf at 1), its answer is slow
    second = asyncio.create_task(b.normalizer.handle(sale(clock, 2, 0)))
    await _settle()
    clock.advance(1)
    shelf.level, shelf.stamp = 0, "Fri, 27 Nov 2026 10:00:03 +0000"  # the last unit sells
    a.reader.sending.set()  # a's read goes now and sees 0
    await first
    assert count(a.db, "bigcommerce.product.out_of_stock") == 1
    b.reader.answering.set()  # b's older read (1 in stock) arrives after a's commit
    await second
    assert count(a.db, "bigcommerce.product.back_in_stock") == 0

    clock.advance(1)
    shelf.stamp = "Fri, 27 Nov 2026 10:00:04 +0000"  # a price change, still sold out
    await b.normalizer.handle(sale(clock, 3, -1))  # the last sale's own delivery
    assert count(a.db, "bigcommerce.product.out_of_stock") == 1
    assert count(a.db, "bigcommerce.product.back_in_stock") == 0


async def test_a_stock_delivery_covered_by_another_process_read_is_not_read_again(
    pair: tuple[Worker, Worker, Shelf, ManualClock],
) -> None:
    a, b, shelf, clock = pair
    clock.advance(1)
    received = clock.now()
    clock.advance(1)
    shelf.level, shelf.stamp = 2, "Fri, 27 Nov 2026 10:00:02 +0000"
    await a.normalizer.handle(sale(clock, 1, -1))  # a's read, sent after both arrived
    assert count(a.db, "bigcommerce.product.inventory_changed") == 1

    await b.normalizer.handle(sale(clock, 2, -1, received))  # a's stored read covers it
    assert (a.reader.requests, b.reader.requests) == (1, 0)
    assert b.normalizer.counts.get("reads_covered") == 1

    clock.advance(1)
    shelf.level = 0
    await b.normalizer.handle(sale(clock, 3, -2))  # arrived after a's read: b reads
    assert b.reader.requests == 1
    assert count(a.db, "bigcommerce.product.out_of_stock") == 1


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_the_baseline_keeps_a_snapshot_another_process_stored_while_it_listed(
    pair: tuple[Worker, Worker, Shelf, ManualClock],
) -> None:
    """Connecting a store lists its products for their first snapshots; a product another
    process normalised meanwhile keeps that (newer) snapshot, so its sell-out fires once."""
    a, b, shelf, clock = pair
    new_pid = 8
    data = {"type": "product", "id": new_pid, "inventory": {"product_id": new_pid, "value": -3}}

    async def meanwhile() -> None:  # the listing's page was read (3 on the shelf), then:
        clock.advance(1)
        shelf.level = 0
        await a.normalizer.handle(delivery(clock, 1, "store/product/inventory/updated", data))

    listing = Listing(clock, shelf, new_pid, meanwhile)
    stores: Any = SimpleNamespace()
    runtime = BigCommerceRuntime(a.normalizer.engine, stores, config=BigCommerceConfig())
    handle: Any = SimpleNamespace(id=STORE, store_hash="abc", client=listing)
    assert await runtime.baseline(handle) == 0
    assert count(a.db, "bigcommerce.product.out_of_stock") == 1

    clock.advance(1)
    data = {**data, "inventory": {"product_id": new_pid, "value": 0}}
    await b.normalizer.handle(delivery(clock, 2, "store/product/inventory/updated", data))
    assert count(a.db, "bigcommerce.product.out_of_stock") == 1
    kept = await b.normalizer.snapshots.stored((STORE, "product", new_pid))
    assert kept is not None and kept.level == 0


class Listing:
    """A client listing one product page (``GET /v3/catalog/products``), recording when it was
    sent as the real client does; ``meanwhile`` runs after the page was read."""

    def __init__(
        self, clock: ManualClock, shelf: Shelf, pid: int, meanwhile: Callable[[], Awaitable[None]]
    ) -> None:
        self.clock, self.shelf, self.pid, self.meanwhile = clock, shelf, pid, meanwhile
        self.record = Sends()

    @contextlib.contextmanager
    def sends(self) -> Iterator[Sends]:
        yield self.record

    async def paginate_v3(self, _path: str, _query: Any) -> AsyncIterator[dict[str, Any]]:
        self.record.at.append(self.clock.now())
        page = [await self.shelf.get(self.pid)]
        await self.meanwhile()
        for product in page:
            yield product
