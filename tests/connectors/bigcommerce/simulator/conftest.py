"""Fixtures for the simulator tests: an app on a ManualClock, API clients whose every response is
checked against BigCommerce's OpenAPI documents, the control client, and a webhook receiver."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from connectors.bigcommerce.simulator import (
    Simulator,
    SimulatorConfig,
    create_simulator,
    simulator_of,
)
from engine.clock import ManualClock
from tests.conftest import require_specs
from tests.servers import serve

from .spec_check import SpecLog, check_response

HOST = "http://sim.test"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def spec_log() -> SpecLog:
    return SpecLog()


@dataclass
class Harness:
    """One simulator plus clients bound to it."""

    app: FastAPI
    sim: Simulator
    spec_log: SpecLog
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def api(self, store_hash: str | None = None, token: str | None = None) -> httpx.AsyncClient:
        """A client for one store's API; every response is checked against the specs."""
        store = self.sim.store(store_hash or self.sim.config.demo_store_hash)

        async def check(response: httpx.Response) -> None:
            await response.aread()
            check_response(response, self.spec_log)

        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        headers["X-Auth-Token"] = store.access_token if token is None else token
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(self.app),
            base_url=f"{HOST}/stores/{store.store_hash}",
            headers=headers,
            event_hooks={"response": [check]},
        )
        self.clients.append(client)
        return client

    def control(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(self.app), base_url=HOST)
        self.clients.append(client)
        return client

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
        await self.sim.aclose()


@pytest.fixture
async def make_harness(
    clock: ManualClock, spec_log: SpecLog
) -> AsyncIterator[Callable[..., Harness]]:
    require_specs()
    made: list[Harness] = []

    def make(**config: Any) -> Harness:
        config.setdefault("clock", clock)
        app = create_simulator(SimulatorConfig(**config))
        harness = Harness(app, simulator_of(app), spec_log)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.aclose()


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()


@pytest.fixture
def sim(harness: Harness) -> Simulator:
    return harness.sim


@pytest.fixture
def api(harness: Harness) -> httpx.AsyncClient:
    return harness.api()


@pytest.fixture
def control(harness: Harness) -> httpx.AsyncClient:
    return harness.control()


# -- a real HTTP server on loopback ----------------------------------------------------------


@dataclass
class Receiver:
    """A webhook destination: records every POST and answers with ``statuses`` in turn."""

    url: str = ""
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=lambda: [200])

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append((headers, json.loads(body)))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    async with serve(recv, lifespan="auto", start_timeout=20) as url:
        recv.url = url + "/hooks/bigcommerce"
        yield recv
