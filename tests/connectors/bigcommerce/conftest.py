"""Helpers for the BigCommerce client tests: a scripted transport, a quota-keeping fake store,
and a driver that moves a ManualClock forward while coroutines wait on it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from connectors.bigcommerce.client import BigCommerceClient, RetryPolicy
from connectors.bigcommerce.ratelimit import BudgetConfig, MemoryQuotaBudget
from connectors.bigcommerce.simulator import (
    Simulator,
    SimulatorConfig,
    Store,
    create_simulator,
    simulator_of,
)
from connectors.bigcommerce.simulator.products import create_product
from engine.clock import ManualClock
from tests.servers import serve

STORE = "abc123"
TOKEN = "tok-secret"
FAST_RETRY = RetryPolicy(
    read_delays=(1.0, 2.0, 4.0), write_delays=(5.0, 10.0), network_delays=(0.5, 1.0)
)


def rl_headers(
    left: int, reset_ms: int, quota: int = 150, window_ms: int = 30_000
) -> dict[str, str]:
    return {
        "X-Rate-Limit-Requests-Left": str(left),
        "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
        "X-Rate-Limit-Requests-Quota": str(quota),
        "X-Rate-Limit-Time-Window-Ms": str(window_ms),
    }


def query(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}


Reply = httpx.Response | Callable[[httpx.Request], httpx.Response] | Exception


class Script:
    """A transport handler answering from a list, in order; the last reply repeats."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)
        return reply(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


class FakeStore:
    """Counts requests in fixed windows on the clock like BigCommerce, answering 429 once the
    quota is spent. Serves ``/v3/catalog/products`` (with ``id:in``, pages) from ``products``."""

    def __init__(self, clock: ManualClock, *, quota: int = 150, window: float = 30.0) -> None:
        self.clock = clock
        self.quota = quota
        self.window = window
        self.window_start = clock.monotonic()
        self.used = 0
        self.statuses: list[int] = []
        self.requests: list[httpx.Request] = []
        self.products: dict[int, dict[str, Any]] = {}
        self.variants: dict[int, list[dict[str, Any]]] = {}

    def _headers(self) -> dict[str, str]:
        now = self.clock.monotonic()
        if now >= self.window_start + self.window:
            periods = int((now - self.window_start) // self.window)
            self.window_start += periods * self.window
            self.used = 0
        reset_ms = round((self.window_start + self.window - now) * 1000)
        return rl_headers(
            max(0, self.quota - self.used), reset_ms, self.quota, int(self.window * 1000)
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        headers = self._headers()
        if self.used >= self.quota:
            self.statuses.append(429)
            return httpx.Response(429, headers=headers, json={"status": 429, "title": "Too many"})
        self.used += 1
        headers = {**headers, "X-Rate-Limit-Requests-Left": str(self.quota - self.used)}
        status, body = self.route(request)
        self.statuses.append(status)
        return httpx.Response(status, headers=headers, json=body)

    def route(self, request: httpx.Request) -> tuple[int, Any]:
        path = request.url.path.split(f"/stores/{STORE}", 1)[1]
        q = query(request)
        if path == "/v3/catalog/products":
            ids = [int(i) for i in q["id:in"].split(",")] if "id:in" in q else sorted(self.products)
            found = [self.products[i] for i in ids if i in self.products]
            return 200, self.page(found, int(q.get("page", 1)), int(q.get("limit", 50)))
        if path == "/v3/catalog/variants":
            pids = [int(i) for i in q["product_id:in"].split(",")]
            found = [v for p in pids for v in self.variants.get(p, [])]
            return 200, self.page(found, int(q.get("page", 1)), int(q.get("limit", 50)))
        return 200, {"data": {"ok": True}, "meta": {}}

    @staticmethod
    def page(items: list[Any], page: int, limit: int) -> dict[str, Any]:
        total_pages = max(1, -(-len(items) // limit))
        chunk = items[(page - 1) * limit : page * limit]
        pagination = {
            "total": len(items),
            "count": len(chunk),
            "per_page": limit,
            "current_page": page,
            "total_pages": total_pages,
        }
        return {"data": chunk, "meta": {"pagination": pagination}}

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


async def settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def drive(
    clock: ManualClock, awaitable: Awaitable[Any], *, step: float = 0.05, limit: float = 600.0
) -> Any:
    """Run ``awaitable``, moving ``clock`` forward by ``step`` whenever everything is waiting."""
    task = asyncio.ensure_future(awaitable)
    start = clock.monotonic()
    while True:
        await settle()
        if task.done():
            return task.result()
        if clock.monotonic() - start > limit:
            task.cancel()
            raise AssertionError(f"still waiting after {limit}s of clock time")
        clock.advance(step)


async def drive_io(
    clock: ManualClock,
    budget: MemoryQuotaBudget,
    store_hash: str,
    awaitable: Awaitable[Any],
    *,
    step: float = 0.05,
    limit: float = 600.0,
) -> Any:
    """Like :func:`drive` for real sockets: move ``clock`` only while no request is in flight,
    so a response on the wire is never overtaken by clock time."""
    task = asyncio.ensure_future(awaitable)
    start = clock.monotonic()
    while not task.done():
        await settle()
        if task.done():
            break
        if budget.snapshot(store_hash).in_flight:
            await asyncio.sleep(0)  # let the loop poll the sockets
            continue
        if clock.monotonic() - start > limit:
            task.cancel()
            raise AssertionError(f"still waiting after {limit}s of clock time")
        clock.advance(step)
    return task.result()


class Live:
    """The store simulator served over loopback HTTP, on the test's clock and budget."""

    def __init__(self, sim: Simulator, url: str, clock: ManualClock, budget: MemoryQuotaBudget):
        self.sim, self.url, self.clock, self.budget = sim, url, clock, budget
        self.store: Store = sim.demo_store
        self.clients: list[BigCommerceClient] = []

    def client(self, token: str | None = None, **kwargs: Any) -> BigCommerceClient:
        kwargs.setdefault("retry", FAST_RETRY)
        client = BigCommerceClient(
            self.store.store_hash,
            token or self.store.access_token,
            base_url=self.url + "/stores/{store_hash}",
            clock=self.clock,
            budget=self.budget,
            **kwargs,
        )
        self.clients.append(client)
        return client

    def add_products(self, n: int) -> list[int]:
        body = {"type": "physical", "weight": 1, "price": 10}
        return [
            create_product(self.store, {**body, "name": f"Bulk {i}"}, announce=False).id
            for i in range(n)
        ]

    def calls(self, path: str) -> int:
        """Requests the simulator logged for ``path`` (``/v3/...``), rate-limited ones included."""
        return sum(1 for r in self.store.requests if r.path == path)

    async def run(self, awaitable: Awaitable[Any], *, step: float = 0.05) -> Any:
        return await drive_io(self.clock, self.budget, self.store.store_hash, awaitable, step=step)


@contextlib.asynccontextmanager
async def live_simulator(
    clock: ManualClock, budget: MemoryQuotaBudget, **config: Any
) -> AsyncIterator[Live]:
    app = create_simulator(SimulatorConfig(clock=clock, **config))
    sim = simulator_of(app)
    try:
        async with serve(app) as url:
            live = Live(sim, url, clock, budget)
            try:
                yield live
            finally:
                for client in live.clients:
                    await client.aclose()
    finally:
        await sim.aclose()


def body_json(request: httpx.Request) -> Any:
    return json.loads(request.content)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def budget(clock: ManualClock) -> MemoryQuotaBudget:
    return MemoryQuotaBudget(clock, BudgetConfig())


@pytest.fixture
async def make_client(clock: ManualClock, budget: MemoryQuotaBudget):
    """Build clients on the test's clock and budget; ``handler`` answers every request."""
    clients: list[BigCommerceClient] = []

    def make(handler: Any, **kwargs: Any) -> BigCommerceClient:
        kwargs.setdefault("budget", budget)
        kwargs.setdefault("retry", FAST_RETRY)
        client = BigCommerceClient(
            STORE, TOKEN, clock=clock, transport=httpx.MockTransport(handler), **kwargs
        )
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.aclose()
