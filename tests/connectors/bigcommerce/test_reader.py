"""ProductReader / VariantsReader: coalescing, batching, windows, misses, failures."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from connectors.bigcommerce.errors import ServerError
from connectors.bigcommerce.ratelimit import MemoryQuotaBudget
from connectors.bigcommerce.reader import ProductReader, VariantsReader
from engine.clock import ManualClock
from tests.connectors.bigcommerce.conftest import (
    FakeStore,
    Script,
    drive,
    live_simulator,
    query,
    settle,
)


def ids_asked(store: FakeStore) -> list[list[int]]:
    return [[int(i) for i in query(r)["id:in"].split(",")] for r in store.requests]


@pytest.fixture
def store(clock) -> FakeStore:
    s = FakeStore(clock)
    s.products = {i: {"id": i, "name": f"P{i}"} for i in range(1, 501)}
    return s


async def test_a_thousand_gets_over_500_ids_take_two_requests(make_client, clock, store):
    reader = ProductReader(make_client(store), clock=clock)
    rng = random.Random(7)
    keys = [rng.randint(1, 500) for _ in range(500)] + list(range(1, 501))
    rng.shuffle(keys)
    results = await drive(clock, asyncio.gather(*(reader.get(k) for k in keys)))
    assert [r["id"] for r in results] == keys
    assert len(store.requests) == 2
    assert sorted(i for batch in ids_asked(store) for i in batch) == list(range(1, 501))
    assert all(query(r)["limit"] == "250" for r in store.requests)
    assert query(store.requests[0])["include"] == "variants,custom_fields"


async def test_repeated_gets_for_one_id_share_one_lookup(make_client, clock, store):
    reader = ProductReader(make_client(store), clock=clock, include=None)
    results = await drive(clock, asyncio.gather(*(reader.get(7) for _ in range(10))))
    assert results == [{"id": 7, "name": "P7"}] * 10
    assert ids_asked(store) == [[7]]
    assert "include" not in query(store.requests[0])


async def test_missing_ids_resolve_to_none(make_client, clock, store):
    reader = ProductReader(make_client(store), clock=clock)
    got = await drive(clock, reader.get_many([3, 9999, 4]))
    assert got == {3: store.products[3], 9999: None, 4: store.products[4]}
    assert len(store.requests) == 1


async def test_lookup_waits_for_the_window_then_sends_once(make_client, clock, store):
    reader = ProductReader(make_client(store), clock=clock, window=0.5)
    first = asyncio.ensure_future(reader.get(1))
    await settle()
    clock.advance(0.3)
    second = asyncio.ensure_future(reader.get(2))
    await settle()
    assert store.requests == []
    clock.advance(0.2)
    await settle()
    assert ids_asked(store) == [[1, 2]]
    assert await first == store.products[1]
    assert await second == store.products[2]
    later = await drive(clock, reader.get(1))  # a new window: a new lookup
    assert later["id"] == 1
    assert ids_asked(store) == [[1, 2], [1]]


async def test_a_full_batch_goes_without_waiting_for_the_window(make_client, clock, store):
    reader = ProductReader(make_client(store), clock=clock, window=10.0, max_batch=3)
    tasks = [asyncio.ensure_future(reader.get(i)) for i in (1, 2, 3, 4)]
    await settle()
    assert ids_asked(store) == [[1, 2, 3]]
    assert [t.done() for t in tasks] == [True, True, True, False]
    clock.advance(10.0)
    await settle()
    assert ids_asked(store) == [[1, 2, 3], [4]]
    assert reader.lookups == 2


async def test_a_lookup_already_sent_is_not_shared(make_client, clock, store: FakeStore):
    gate = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return store(request)

    reader = ProductReader(make_client(slow), clock=clock, window=0.05)
    first = asyncio.ensure_future(reader.get(5))
    await settle()
    clock.advance(0.05)
    await settle()
    assert len(store.requests) == 0  # held at the gate, but sent
    second = asyncio.ensure_future(reader.get(5))
    await settle()
    clock.advance(0.05)
    await settle()
    gate.set()
    await settle()
    assert await first == await second == store.products[5]
    assert ids_asked(store) == [[5], [5]]


class HeldBudget(MemoryQuotaBudget):
    """The store's quota, spent until ``open`` is set."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.open = asyncio.Event()

    async def acquire(self, store_hash: str) -> None:
        await self.open.wait()
        await super().acquire(store_hash)


async def test_ids_asked_while_the_quota_is_spent_go_in_one_request_when_it_is_sent(
    make_client, clock, store
):
    budget = HeldBudget(clock)
    reader = ProductReader(make_client(store, budget=budget), clock=clock, window=0.05)
    first = asyncio.ensure_future(reader.read(1))
    await settle()
    clock.advance(0.05)  # its window closed: it waits for the quota
    await settle()
    clock.advance(1.0)
    second = asyncio.ensure_future(reader.read(2))
    again = asyncio.ensure_future(reader.read(1))
    await settle()
    clock.advance(0.05)
    await settle()
    assert store.requests == []
    clock.advance(1.0)
    budget.open.set()
    await settle()
    assert ids_asked(store) == [[1, 2]]
    sent = clock.now()
    assert await first == await again == (sent, store.products[1])  # sent, not asked, at
    assert await second == (sent, store.products[2])
    assert reader.lookups == 1


async def test_a_failed_lookup_fails_every_waiter_and_the_next_one_retries(make_client, clock):
    products = {"data": [{"id": 1}], "meta": {"pagination": {"current_page": 1, "total_pages": 1}}}
    script = Script(httpx.Response(400, json={"title": "bad"}), httpx.Response(200, json=products))
    reader = ProductReader(make_client(script), clock=clock)
    results = await drive(
        clock, asyncio.gather(reader.get(1), reader.get(1), reader.get(2), return_exceptions=True)
    )
    assert len(results) == 3
    assert all(isinstance(r, Exception) and not isinstance(r, ServerError) for r in results)
    assert await drive(clock, reader.get(1)) == {"id": 1}


async def test_aclose_sends_what_is_pending(make_client, clock, store):
    reader = ProductReader(make_client(store), clock=clock, window=60.0)
    task = asyncio.ensure_future(reader.get(8))
    await settle()
    await reader.aclose()
    assert await task == store.products[8]


async def test_reader_under_a_burst_stays_inside_the_quota(make_client, clock):
    # 6,000 ids in bursts of 250 against a 10-request window: 24 requests, 7 per window
    # (3 kept in reserve), so the last 3 go in the fourth window.
    store = FakeStore(clock, quota=10)
    store.products = {i: {"id": i} for i in range(1, 6_001)}
    reader = ProductReader(make_client(store), clock=clock)

    async def burst(start: int) -> int:
        found = await asyncio.gather(*(reader.get(start + i) for i in range(250)))
        return sum(1 for p in found if p is not None)

    counts = await drive(clock, asyncio.gather(*(burst(b * 250 + 1) for b in range(24))), step=1.0)
    assert sum(counts) == 6_000
    assert store.statuses == [200] * 24
    assert 90.0 <= clock.monotonic() < 91.0


async def test_variants_reader_groups_by_product(make_client, clock, store):
    store.variants = {1: [{"id": 10, "product_id": 1}, {"id": 11, "product_id": 1}]}
    reader = VariantsReader(make_client(store), clock=clock)
    one, two = await drive(clock, asyncio.gather(reader.get(1), reader.get(2)))
    assert [v["id"] for v in one] == [10, 11]
    assert two is None
    assert [query(r)["product_id:in"] for r in store.requests] == ["1,2"]


def test_max_batch_must_fit_a_page(make_client):
    with pytest.raises(ValueError, match="max_batch"):
        ProductReader(make_client(Script(httpx.Response(200))), max_batch=251)


# -- against the store simulator, over HTTP on loopback ---------------------------------------


async def test_reader_over_http_answers_a_thousand_gets_with_two_requests(clock, budget):
    async with live_simulator(clock, budget) as live:
        ids = live.add_products(500)
        reader = ProductReader(live.client(), clock=clock)
        keys = ids + ids[::-1]
        got = await live.run(asyncio.gather(*(reader.get(k) for k in keys)))
        assert [p["id"] for p in got] == keys
        assert got[0]["name"] == "Bulk 0"
        assert isinstance(got[0]["variants"], list)
        assert isinstance(got[0]["custom_fields"], list)
        assert live.calls("/v3/catalog/products") == 2
        assert live.store.counters.rate_limited == 0
        assert await live.run(reader.get(10**6)) is None
