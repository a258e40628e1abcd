"""The Black Friday burst in distributed mode (``bench_distributed --black-friday``): the store
simulator in its own process (150 requests per 30 s, as bench_black_friday serves it) sends
stock webhooks to this process, which only ingests them (as ``sous serve`` does), and
``sous worker`` processes normalise them and run the sold-out recipe, all sharing one store's
quota through PostgreSQL. Printed: BigCommerce requests per webhook, 429 answers, webhook
acknowledgement latency, runs, and the time until the backlog is drained."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from bench.bench_black_friday import (
    HOOK_SECRET,
    RECIPE,
    SECRET_KEY,
    STORE,
    TOKEN,
    start_webhooks,
)
from connectors.bigcommerce.stores import BigCommerceConfig
from engine import Engine
from engine.clock import SystemClock
from engine.context import Services
from engine.queue.procrastinate import ProcrastinateJobQueue, install_schema
from engine.store.db import Database
from engine.store.models import StoreRow
from engine.store.vault import Cipher
from sous.container import Container, build_registry
from sous.distributed import install
from sous.migrate import upgrade
from sous.sandbox import free_port
from sous.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _scalar(db: Database, sql: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def _workers(count: int, url: str) -> list[subprocess.Popen[bytes]]:
    env = dict(
        os.environ,
        SOUS_DATABASE_URL=url,
        SOUS_QUEUE="procrastinate",
        SOUS_SECRET_KEY=SECRET_KEY,
        SOUS_WORKERS="16",
        SOUS_BIGCOMMERCE_RECONCILE_INTERVAL="3600",
        PYTHONPATH=str(ROOT),
    )
    procs = []
    for n in range(count):
        log = (ROOT / f".bench-bf-worker-{n}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "sous.cli", "worker"], cwd=ROOT, env=env, stdout=log,
                stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        log.close()
    return procs


async def _ready(procs: list[subprocess.Popen[bytes]]) -> None:
    logs = [ROOT / f".bench-bf-worker-{n}.log" for n in range(len(procs))]
    while not all("is taking jobs" in p.read_text(errors="replace") for p in logs):
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a worker exited:\n" + "\n".join(p.read_text() for p in logs))
        await asyncio.sleep(0.2)


def _simulator(port: int, products: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.bench_black_friday", "--serve-simulator", str(port),
         "--products", str(products), "--scale", "1", "--workers", "16"], cwd=ROOT,
    )  # fmt: skip


def _container(url: str, sous_port: int) -> Container:
    """An ingest-only Sous on the database (its engine is never started: workers run jobs)."""
    clock = SystemClock()
    db = Database(url)
    registry = build_registry()
    services = Services()
    settings = Settings(database_url=url, secret_key=SecretStr(SECRET_KEY), queue="procrastinate")
    engine = Engine(
        db, registry, clock=clock, services=services, queue=ProcrastinateJobQueue(db, clock)
    )
    install(engine)
    return Container(
        settings, db, registry, engine, services, clock,
        bigcommerce=BigCommerceConfig(reconcile_interval=3600),
        public_base_url=f"http://127.0.0.1:{sous_port}",
    )  # fmt: skip


async def _connect(container: Container, runtime: Any, sim_url: str) -> int:
    cipher, base = Cipher(SECRET_KEY), f"{sim_url}/stores/{STORE}"
    row = StoreRow(
        id="sto_blackfriday", workspace_id="default", store_hash=STORE, api_base_url=base,
        access_token_enc=cipher.encrypt(TOKEN), created_at=container.clock.now(),
        webhook_secret_enc=cipher.encrypt(HOOK_SECRET),
    )  # fmt: skip
    with container.db.session() as s:
        s.add(row)
        s.commit()
    registered = await runtime.register(
        workspace="default", store_id=row.id, store_hash=STORE, api_base_url=base,
        access_token=TOKEN, webhook_secret=HOOK_SECRET,
    )  # fmt: skip
    engine = container.engine
    engine.refresh(engine.recipes.create("default", RECIPE))
    return len(registered["hooks"])


async def _burst(http: httpx.AsyncClient, db: Database, webhooks: int, seconds: float) -> float:
    """Send the burst; the seconds until it was delivered and every job done."""
    t0 = time.perf_counter()
    await http.post("/_bench/burst", json={"webhooks": webhooks, "seconds": seconds})
    while not (await http.get("/_bench/stats")).json()["done"]:  # noqa: ASYNC110 - another process
        await asyncio.sleep(0.25)
    left = "SELECT count(*) FROM procrastinate_jobs WHERE status <> 'succeeded'"
    while _scalar(db, left):  # noqa: ASYNC110 - the workers' progress, in the database
        await asyncio.sleep(0.25)
    return time.perf_counter() - t0


async def _run(
    url: str, workers: int, webhooks: int, products: int, seconds: float
) -> dict[str, Any]:
    sim_port, sous_port = free_port(), free_port()
    simulator = _simulator(sim_port, products)
    procs: list[subprocess.Popen[bytes]] = []
    container = _container(url, sous_port)
    sim_url = f"http://127.0.0.1:{sim_port}"
    try:
        async with contextlib.AsyncExitStack() as stack:
            http, runtime = await start_webhooks(stack, container, sim_url, sous_port)
            hooks = await _connect(container, runtime, sim_url)
            procs = _workers(workers, url)
            await _ready(procs)
            print(f"{products} products, {hooks} hooks, {workers} workers; {webhooks} stock "
                  f"changes over {seconds:g} s", flush=True)  # fmt: skip
            drained = await _burst(http, container.db, webhooks, seconds)
            stats: dict[str, Any] = (await http.get("/_bench/stats")).json()
            stats["drained"] = drained
            stats["runs"] = _scalar(
                container.db, "SELECT count(*) FROM run WHERE status = 'succeeded'"
            )
            stats["accepted"] = _scalar(
                container.db, "SELECT count(*) FROM event WHERE type = 'bigcommerce.webhook'"
            )
            return stats
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        WORKER_COUNTS[:] = [_counts(n) for n in range(len(procs))]
        simulator.terminate()
        simulator.wait(10)
        await container.engine.queue.close()
        container.db.dispose()
        for n in range(len(procs)):
            (ROOT / f".bench-bf-worker-{n}.log").unlink(missing_ok=True)


WORKER_COUNTS: list[dict[str, int]] = []
"""What each worker logged when it stopped (``sous worker counts: {...}``)."""


def _counts(n: int) -> dict[str, int]:
    text_ = (ROOT / f".bench-bf-worker-{n}.log").read_text(errors="replace")
    found = re.findall(r"sous worker counts: (\{.*\})", text_)
    return dict(json.loads(found[-1])) if found else {}


def _worker_lines() -> list[tuple[str, str]]:
    """Per worker: store requests and batches; normalisation jobs, product reads (made, reused
    from this process's latest, not needed as the database's snapshot is newer than the
    delivery), snapshot conflicts, derivations again, jobs put back; out_of_stock derived."""
    lines = []
    for n, c in enumerate(WORKER_COUNTS):
        lines.append((f"worker {n}", ", ".join(
            f"{name} {c.get(key, 0)}" for name, key in (
                ("requests", "store_requests"), ("read batches", "store_read_batches"),
                ("jobs", "normalize_jobs_done"), ("reads", "normalize_reads"),
                ("reused", "normalize_reads_reused"),
                ("covered by the snapshot", "normalize_reads_covered"),
                ("conflicts", "normalize_snapshot_conflicts"),
                ("derived again", "normalize_derived_again"),
                ("put back", "normalize_jobs_retried"),
                ("out_of_stock", "normalize_events:bigcommerce.product.out_of_stock"),
            )
        )))  # fmt: skip
    return lines


def black_friday(server: str, workers: int, webhooks: int, products: int, seconds: float) -> int:
    """Run the burst on a scratch database of ``server``; print the figures; exit status."""
    name = f"sous_bench_bf_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.rsplit("/", 1)[0] + f"/{name}"
    try:
        engine = create_engine(url)
        upgrade(engine)
        install_schema(engine)
        engine.dispose()
        stats = asyncio.run(_run(url, workers, webhooks, products, seconds))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    sent, requests, limited = stats["sent"], stats["requests"], stats["rate_limited"]
    lines = [
        ("webhooks sent by the simulator", f"{sent} in {stats['burst_wall']:.1f} s"),
        ("events accepted", f"{stats['accepted']} (failed: {stats['failed_deliveries']})"),
        ("runs completed", f"{stats['runs']} (sold-out products: {products})"),
        ("BigCommerce requests", f"{requests} = {requests / max(1, sent):.4f} per webhook"),
        ("429 responses", f"{limited}"),
        ("webhook ack latency", f"p50 {stats['p50']:.1f} ms, p99 {stats['p99']:.1f} ms"),
        ("backlog drained after", f"{stats['drained']:.1f} s"),
    ]  # fmt: skip
    lines += [(f"  failed delivery {n + 1}", e) for n, e in enumerate(stats["errors"])]
    lines += _worker_lines()
    for label, value in lines:
        print(f"{label:<34}{value}")
    ok = limited == 0 and stats["accepted"] == sent and stats["runs"] == products
    return 0 if ok else 1
