"""Black Friday burst: 10,000 inventory webhooks over 500 products within one minute, delivered
by the store simulator over HTTP to Sous's webhook endpoint, normalised, and one recipe
(``bigcommerce.product.out_of_stock`` → ``core.log``) run on every product that sells out.

The simulator runs in its own process (as a store is remote), started by this script with
``--serve-simulator``; it keeps BigCommerce's quota of 150 requests per 30 s of its clock and
times every webhook delivery until Sous acknowledges it. Each product starts with 20 in stock
(warning level 5, tracked by product); the burst takes one unit at a time, in random order, as
orders do (``store/product/inventory/order/updated``), so every product reaches zero once:
500 ``out_of_stock`` transitions, 500 runs.

Time: both processes use a clock running ``--scale`` simulated seconds per wall second (1 by
default: a real minute). The quota stays 150 requests per 30 *simulated* seconds at any scale,
and so do the product-read window and the burst's length; ``--scale 0.5`` gives a slower
machine twice as long in wall time for the same simulated minute.

Printed: events accepted, normalised events, runs completed, BigCommerce requests per webhook
(target ≤ 0.05), 429 responses (target 0), acknowledgement latency p50/p99, wall time until the
backlog is drained, lost (webhooks the simulator sent that Sous did not store; must be 0), and
products whose last known level differs from the store's (must be 0). Exit status 1 if a target
is missed.

    python -m bench.bench_black_friday [--webhooks 10000] [--products 500] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select

from bench.common import percentile
from connectors.bigcommerce import models as tables
from connectors.bigcommerce.connector import CONNECTOR
from connectors.bigcommerce.simulator import SimulatorConfig, create_simulator, simulator_of
from connectors.bigcommerce.simulator.catalog import set_level
from connectors.bigcommerce.simulator.products import create_product
from connectors.bigcommerce.stores import BigCommerceConfig
from connectors.bigcommerce.wiring import BigCommerceRuntime
from connectors.core import CONNECTOR as CORE
from engine import Engine, EngineSettings
from engine.context import Services
from engine.registry import Registry
from engine.store.db import Database
from engine.store.models import EventRow, RunRow, StoreRow
from engine.store.vault import Cipher
from sous.container import Container
from sous.sandbox import free_port
from sous.settings import Settings
from sous.wiring import wire_bigcommerce

STORE, TOKEN, HOOK_SECRET = "blackfriday", "bench-token", "bench-webhook-secret"
SECRET_KEY = "bench-secret-key"
RECIPE = {
    "id": "sold-out-alert",
    "name": "Tell staff when a product sells out",
    "trigger": {"type": "bigcommerce.product.out_of_stock"},
    "conditions": [{"==": [{"var": "product.inventory_tracking"}, "product"]}],
    "actions": [{"use": "core.log", "with": {"message": "{{ product.name }} sold out"}}],
}


class ScaledClock:
    """Wall time sped up (or slowed down) by ``scale``; sleeps shrink (or grow) to match."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._t0 = time.monotonic()
        self._start = datetime.now(UTC)

    def monotonic(self) -> float:
        return (time.monotonic() - self._t0) * self.scale

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)


@contextlib.asynccontextmanager
async def serve(app: Any, port: int) -> AsyncIterator[None]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


# -- the simulator's process ---------------------------------------------------------------------


class TimedTransport(httpx.AsyncBaseTransport):
    """The simulator's webhook transport, timing each delivery until Sous acknowledges it."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=64))
        self.latencies: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.latencies.append((time.perf_counter() - started) * 1000)
        return response


def simulator_app(products: int, scale: float, workers: int) -> FastAPI:
    """The simulator with one store of ``products`` products, and ``/_bench`` controls."""
    clock = ScaledClock(scale)
    timed = TimedTransport()
    config = SimulatorConfig(
        clock=clock, seed=False, quota=150, window_ms=30_000, webhook_workers=workers,
        webhook_transport=timed, request_log_size=1_000_000,
    )  # fmt: skip
    app = create_simulator(config)
    sim = simulator_of(app)
    store = sim.state.add_store(store_hash=STORE, name="Black Friday", access_token=TOKEN)
    catalog = [
        create_product(store, {"name": f"Product {n:03d}", "type": "physical", "weight": 1,
                               "price": 20, "sku": f"BF-{n:03d}", "inventory_tracking": "product",
                               "inventory_level": 20, "inventory_warning_level": 5},
                       announce=False)
        for n in range(products)
    ]  # fmt: skip
    state: dict[str, Any] = {"sent": 0, "done": False, "wall": 0.0}

    async def burst(webhooks: int, seconds: float) -> None:
        units = [p for p in catalog for _ in range(webhooks // len(catalog))]
        random.Random(7).shuffle(units)
        step, start, t0 = seconds / len(units), clock.monotonic(), time.perf_counter()
        before = len(store.events)
        for n, product in enumerate(units):
            due = start + n * step
            if due > clock.monotonic():
                await clock.sleep(due - clock.monotonic())
            set_level(store, (product, None), product.inventory_level - 1, via_order=True)
        state.update(sent=len(store.events) - before, wall=time.perf_counter() - t0)
        await sim.deliveries.drain()
        state["done"] = True

    @app.post("/_bench/burst")
    async def start(body: dict[str, Any]) -> dict[str, Any]:
        store.reset_log()
        sim.limiter.reset(STORE)
        timed.latencies.clear()
        state["task"] = asyncio.create_task(burst(int(body["webhooks"]), float(body["seconds"])))
        return {"started": True}

    @app.get("/_bench/stats")
    async def stats() -> dict[str, Any]:
        failed = [r for r in sim.deliveries.log if not r.ok]
        return {
            "sent": state["sent"], "done": state["done"], "burst_wall": state["wall"],
            "requests": store.counters.requests, "rate_limited": store.counters.rate_limited,
            "failed_deliveries": len(failed),
            "errors": [f"event {r.event_seq} attempt {r.attempt} at {r.at:%H:%M:%S}: "
                       f"{r.status_code or r.error}" for r in failed[:10]],
            "p50": percentile(timed.latencies, 50), "p99": percentile(timed.latencies, 99),
            "acks": len(timed.latencies), "levels": {p.id: p.inventory_level for p in catalog},
        }  # fmt: skip

    return app


async def start_webhooks(
    stack: contextlib.AsyncExitStack, container: Container, sim_url: str, sous_port: int
) -> tuple[httpx.AsyncClient, BigCommerceRuntime]:
    """Once the simulator at ``sim_url`` answers, start the BigCommerce connector on
    ``container`` and serve its webhook router on ``sous_port``; a client of the simulator and
    the connector."""
    http = await stack.enter_async_context(httpx.AsyncClient(base_url=sim_url, timeout=30))
    for _ in range(300):
        with contextlib.suppress(httpx.TransportError):
            if (await http.get("/_sim")).status_code == 200:
                break
        await asyncio.sleep(0.1)
    runtime = await wire_bigcommerce(container, stack)
    app = FastAPI()
    app.include_router(runtime.router())
    await stack.enter_async_context(serve(app, sous_port))
    return http, runtime


def serve_simulator(port: int, products: int, scale: float, workers: int) -> None:
    app = simulator_app(products, scale, workers)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


# -- Sous's process ------------------------------------------------------------------------------


def _count(db: Database, query: Any) -> int:
    with db.session() as s:
        return int(s.execute(query).scalar_one())


async def run(webhooks: int, products: int, seconds: float, scale: float, workers: int) -> int:
    sim_port, sous_port = free_port(), free_port()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bench_black_friday", "--serve-simulator", str(sim_port),
        "--products", str(products), "--scale", str(scale), "--workers", str(workers),
    )  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="sous-bench-bf-"))
    clock = ScaledClock(scale)
    db = Database(f"sqlite:///{folder / 'sous.db'}")
    db.create_all()
    registry = Registry([CORE, CONNECTOR])  # only what the burst needs
    services = Services()
    settings = Settings(database_url=db.url, secret_key=SecretStr(SECRET_KEY))
    engine = Engine(
        db, registry, clock=clock, services=services, settings=EngineSettings(workers=16)
    )
    config = BigCommerceConfig(reconcile_interval=3600)  # the default read window
    container = Container(
        settings, db, registry, engine, services, clock, bigcommerce=config,
        public_base_url=f"http://127.0.0.1:{sous_port}",
    )  # fmt: skip
    sim_url = f"http://127.0.0.1:{sim_port}"
    try:
        async with contextlib.AsyncExitStack() as stack:
            http, runtime = await start_webhooks(stack, container, sim_url, sous_port)
            cipher, base = Cipher(SECRET_KEY), f"{sim_url}/stores/{STORE}"
            row = StoreRow(
                id="sto_blackfriday", workspace_id="default", store_hash=STORE, api_base_url=base,
                access_token_enc=cipher.encrypt(TOKEN), created_at=clock.now(),
                webhook_secret_enc=cipher.encrypt(HOOK_SECRET),
            )  # fmt: skip
            with db.session() as s:
                s.add(row)
                s.commit()
            registered = await runtime.register(
                workspace="default", store_id=row.id, store_hash=STORE, api_base_url=base,
                access_token=TOKEN, webhook_secret=HOOK_SECRET,
            )  # fmt: skip
            engine.refresh(engine.recipes.create("default", RECIPE))
            await engine.start()
            stack.push_async_callback(engine.stop)
            hooks = len(registered["hooks"])
            span = f"{seconds:g} simulated s (scale {scale:g}: {seconds / scale:g} s wall)"
            print(f"{products} products, {hooks} hooks; {webhooks} stock changes over {span}")
            t0, cpu0 = time.perf_counter(), time.process_time()
            await http.post("/_bench/burst", json={"webhooks": webhooks, "seconds": seconds})
            for _ in range(100_000):  # the simulator has sent and delivered everything
                if (await http.get("/_bench/stats")).json()["done"]:
                    break
                await asyncio.sleep(0.25)
            for _ in range(100_000):  # then Sous has processed everything
                await engine.drain(timeout=600)
                await asyncio.sleep(0.2)
                if not (engine.queue.depth() or engine.workers.busy):
                    break
            drained = time.perf_counter() - t0
            stats = (await http.get("/_bench/stats")).json()
            stats["cpu"] = time.process_time() - cpu0
            return report(db, runtime, stats, drained, scale, row.id, products)
    finally:
        child.terminate()
        await child.wait()
        db.dispose()
        shutil.rmtree(folder, ignore_errors=True)


def report(db: Database, runtime: Any, stats: dict[str, Any], drained: float, scale: float,
           store_id: str, products: int) -> int:  # fmt: skip
    events = EventRow.__table__  # type: ignore[attr-defined]
    runs = RunRow.__table__  # type: ignore[attr-defined]
    of_type = select(func.count()).select_from(events)
    accepted = _count(db, of_type.where(events.c.type == "bigcommerce.webhook"))
    normalised = _count(db, of_type.where(events.c.type.like("bigcommerce.product.%")))
    sold_out = _count(db, of_type.where(events.c.type == "bigcommerce.product.out_of_stock"))
    completed = _count(
        db, select(func.count()).select_from(runs).where(runs.c.status == "succeeded")
    )
    levels = {int(k): v for k, v in stats["levels"].items()}
    stale = sum(
        1 for pid, level in levels.items()
        if (runtime.snapshots.get((store_id, "product", pid)) or tables.Snapshot()).level != level
    )  # fmt: skip
    sent, requests, limited = stats["sent"], stats["requests"], stats["rate_limited"]
    per_webhook = requests / max(1, sent)
    lost = sent - accepted
    cpu_ms = stats["cpu"] / max(1, sent) * 1000
    dups = runtime.webhooks.outcomes.get("duplicate", 0)
    lines = [
        ("webhooks sent by the simulator", f"{sent} in {stats['burst_wall']:.1f} s wall"),
        ("events accepted", f"{accepted} (duplicates {dups}, failed deliveries "
                            f"{stats['failed_deliveries']} {stats['errors'] or ''})"),
        ("normalised events", f"{normalised} (out_of_stock {sold_out})"),
        ("runs completed", f"{completed}"),
        ("BigCommerce requests", f"{requests} = {per_webhook:.4f} per webhook (target <= 0.05)"),
        ("429 responses", f"{limited} (target 0)"),
        ("webhook ack latency", f"p50 {stats['p50']:.1f} ms, p99 {stats['p99']:.1f} ms"),
        ("backlog drained after", f"{drained:.1f} s wall = {drained * scale:.1f} simulated s"),
        ("Sous CPU", f"{stats['cpu']:.1f} s = {cpu_ms:.2f} ms per webhook"),
        ("lost", f"{lost} (must be 0)"),
        ("levels differing from the store", f"{stale} (must be 0)"),
    ]  # fmt: skip
    for name, value in lines:
        print(f"{name:<34}{value}")
    ok = lost == 0 and limited == 0 and stale == 0 and per_webhook <= 0.05
    return 0 if ok and sold_out == products == completed else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0, help="simulated length of the burst")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="simulated seconds per wall second"
    )
    parser.add_argument("--workers", type=int, default=16, help="concurrent webhook deliveries")
    parser.add_argument("--serve-simulator", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_simulator:
        serve_simulator(args.serve_simulator, args.products, args.scale, args.workers)
        return
    code = asyncio.run(run(args.webhooks, args.products, args.seconds, args.scale, args.workers))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
