"""One BigCommerce quota shared by several processes: four budgets, each with its own
PostgreSQL connection (as four worker processes would have), each sending ten requests at once
through the store simulator (150 requests per 30 s). With :class:`PostgresQuotaBudget` the store
never answers 429; with a :class:`MemoryQuotaBudget` per process, as before, it does."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from connectors.bigcommerce.client import BigCommerceClient
from connectors.bigcommerce.ratelimit import MemoryQuotaBudget, QuotaBudget, RetryPolicy
from connectors.bigcommerce.ratelimit_pg import PostgresQuotaBudget
from connectors.bigcommerce.simulator import SimulatorConfig, create_simulator, simulator_of
from engine.clock import ManualClock

pytestmark = pytest.mark.postgres

PROCESSES, CONCURRENCY, EACH = 4, 10, 10  # 400 requests: more than two windows' worth


class SlowTransport(httpx.AsyncBaseTransport):
    """The simulator in-process, each answer taking a few real milliseconds, so that requests
    of different processes are in flight at the same time."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.004)
        return await self._inner.handle_async_request(request)


async def push(budgets: list[QuotaBudget], clock: ManualClock) -> tuple[int, int, float]:
    """Send every request; return the 429s the store answered, the successes, and the
    seconds of (manual) time it took."""
    app = create_simulator(SimulatorConfig(clock=clock, quota=150, window_ms=30_000))
    sim = simulator_of(app)
    store = sim.demo_store
    transport = SlowTransport(app)
    clients = [
        BigCommerceClient(
            store.store_hash,
            store.access_token,
            base_url="http://sim/stores/{store_hash}",
            budget=budget,
            clock=clock,
            transport=transport,
            retry=RetryPolicy(max_rate_limited=50),
        )
        for budget in budgets
    ]
    ok = 0
    start = clock.now()

    async def requester(client: BigCommerceClient) -> None:
        nonlocal ok
        for _ in range(EACH):
            await client.request("GET", "catalog/products", params={"limit": 1})
            ok += 1

    async def drive() -> None:
        while True:  # time passes only while every caller waits on the clock
            await asyncio.sleep(0.01)
            if clock.sleepers:
                clock.advance(0.5)

    driver = asyncio.create_task(drive())
    try:
        await asyncio.wait_for(
            asyncio.gather(*(requester(c) for c in clients for _ in range(CONCURRENCY))), 120
        )
    finally:
        driver.cancel()
        for client in clients:
            await client.aclose()
        await sim.aclose()
    return store.counters.rate_limited, ok, (clock.now() - start).total_seconds()


async def test_a_shared_budget_never_exceeds_the_quota(pg_url: str) -> None:
    clock = ManualClock()
    budgets = [PostgresQuotaBudget(pg_url, clock) for _ in range(PROCESSES)]
    try:
        limited, ok, took = await push(list(budgets), clock)
    finally:
        for budget in budgets:
            await budget.aclose()
    assert ok == PROCESSES * CONCURRENCY * EACH
    assert limited == 0
    assert took >= 60  # it did have to wait for two window resets


async def test_budgets_kept_per_process_do_exceed_it() -> None:
    """The failure the shared budget prevents (and proof this test can see it)."""
    clock = ManualClock()
    limited, ok, _ = await push([MemoryQuotaBudget(clock) for _ in range(PROCESSES)], clock)
    assert ok == PROCESSES * CONCURRENCY * EACH
    assert limited > 0


async def test_a_dead_processs_requests_in_flight_expire(pg_url: str) -> None:
    clock = ManualClock()
    dead = PostgresQuotaBudget(pg_url, clock, lease_ttl=60)
    alive = PostgresQuotaBudget(pg_url, clock, lease_ttl=60)
    try:
        for _ in range(dead.config.probe_concurrency):
            await dead.acquire("lost")  # never observed: the process died
        waiting = asyncio.create_task(alive.acquire("lost"))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # the probe slots are taken
        clock.advance(61)
        await asyncio.wait_for(waiting, 2)
        alive.observe("lost", {}, None)
        await alive.flush()
    finally:
        await dead.aclose()
        await alive.aclose()
