"""Helpers for the BigCommerce client tests: a scripted transport, a quota-keeping fake store,
and a driver that moves a ManualClock forward while coroutines wait on it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from connectors.bigcommerce.client import BigCommerceClient, RetryPolicy
from connectors.bigcommerce.ratelimit import BudgetConfig, MemoryQuotaBudget
from engine.clock import ManualClock

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
