"""One BigCommerce quota shared by several ``sous worker`` processes, end to end: the store
simulator in a process of its own keeps 150 requests per window; a burst of events is stored
with its runs' jobs, then three workers (16 runs at once each) start on it, running a recipe
that calls the store once per run. The burst needs more requests than one window allows; the
workers share the quota through PostgreSQL (the wiring creates a :class:`PostgresQuotaBudget`
because the database is PostgreSQL), so the store answers no 429. With a budget per process
(as before the wiring) the same burst draws 429s: each process's requests in flight are unknown
to the others.

The window is 2 s instead of 30 s (the simulator's ``--window-ms``) so that the test takes
seconds: the quota, the reserve and the policy are those of a real store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from api.keys import workspace_id
from engine import Engine, NewEvent
from engine.clock import SystemClock
from engine.model.ids import new_id
from engine.queue.procrastinate import ProcrastinateJobQueue
from engine.registry import Registry
from engine.store.db import Database
from engine.store.models import StoreRow
from engine.store.vault import Cipher
from sous.container import connectors
from sous.sandbox import free_port
from tests.distributed.cluster import ROOT, WORKSPACE, Cluster
from tests.distributed.pg import fresh_database
from tests.distributed.proc import ledger_connector

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

QUOTA, WINDOW_MS = 150, 2000
LATENCY_MS = 250  # each answer takes this long, so the processes' requests overlap in flight
EVENTS = 320  # one request each: more than two windows' worth once the reserve is kept
SECRET = "quota-cluster-test-secret-key"
RECIPE = {
    "id": "touch-store",
    "name": "touch the store",
    "trigger": {"type": "custom.touch"},
    "flood": False,  # the engine's default flood limit would hold a burst this size
    "actions": [
        {"id": "who", "use": "test.ledger", "with": {"note": "n={{ n }}"}},
        {
            "id": "read",
            "use": "bigcommerce.request",
            "with": {"path": "/v3/catalog/products", "query": {"limit": 1}},
        },
    ],
}
FAST_QUEUE = {
    "SOUS_QUEUE_HEARTBEAT": "0.5",
    "SOUS_QUEUE_STALLED_AFTER": "2",
    "SOUS_QUEUE_POLL": "0.5",
    "SOUS_SECRET_KEY": SECRET,
}


@contextmanager
def simulator(folder: Path) -> Iterator[str]:
    """The store simulator on a loopback port; yields its root URL."""
    port = free_port()
    log = (folder / "simulator.log").open("wb")
    args = ["--port", str(port), "--quota", str(QUOTA), "--window-ms", str(WINDOW_MS)]
    args += ["--latency-ms", str(LATENCY_MS)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "connectors.bigcommerce.simulator", *args],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (folder / "simulator.log").read_text()
            try:
                if httpx.get(f"{root}/_sim", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the simulator did not start"
            time.sleep(0.1)
        yield root
    finally:
        proc.terminate()
        proc.wait(10)


def connect_store(url: str, root: str) -> None:
    """The simulator's demo store, connected to the cluster's workspace."""
    cipher = Cipher(SECRET)
    db = Database(url)
    try:
        with db.session() as s:
            s.add(
                StoreRow(
                    id=new_id("sto"),
                    workspace_id=workspace_id(WORKSPACE),
                    store_hash="sousdemo",
                    name="simulated",
                    api_base_url=f"{root}/stores/{{store_hash}}",
                    access_token_enc=cipher.encrypt("sim-demo-token"),
                    webhook_secret_enc=cipher.encrypt("unused"),
                    created_at=SystemClock().now(),
                )
            )
            s.commit()
    finally:
        db.dispose()


def scalar(db: Database, sql: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


async def store_burst(url: str) -> None:
    """The events, their runs and jobs, stored as ``sous serve`` stores them."""
    db = Database(url)
    engine = Engine(
        db,
        Registry([*connectors(), ledger_connector()]),
        queue=ProcrastinateJobQueue(db, SystemClock()),
    )
    try:
        engine.reload()
        news = [
            NewEvent(
                type="custom.touch",
                payload={"n": n},
                store="sousdemo",
                workspace=workspace_id(WORKSPACE),
                dedup_key=f"touch-{n}",
            )
            for n in range(EVENTS)
        ]
        results = await engine.ingest_many(news)
        assert sum(len(r.runs) for r in results) == EVENTS
    finally:
        await engine.queue.close()
        db.dispose()


async def test_workers_share_one_store_quota_and_draw_no_429(tmp_path: Path) -> None:
    with fresh_database() as url, simulator(tmp_path) as root:
        cluster = Cluster(url, tmp_path, FAST_QUEUE)
        cluster.prepare(RECIPE)
        connect_store(url, root)
        db = Database(url)
        try:
            await store_burst(url)
            started = time.monotonic()
            for n in (1, 2, 3):
                cluster.worker(n, workers=16)
            cluster.wait_ready()
            deadline = time.monotonic() + 90
            while scalar(db, "SELECT count(*) FROM run WHERE status = 'succeeded'") < EVENTS:
                failed = scalar(db, "SELECT count(*) FROM run WHERE status = 'failed'")
                assert failed == 0, cluster.procs[0].output()[-3000:]
                assert time.monotonic() < deadline, cluster.procs[0].output()[-3000:]
                await asyncio.sleep(0.1)
            took = time.monotonic() - started
            async with httpx.AsyncClient() as client:
                counters = (await client.get(f"{root}/_sim/stores/sousdemo/counters")).json()
            pids = scalar(db, "SELECT count(DISTINCT pid) FROM ledger")
            print(
                f"\n{EVENTS} runs, {counters['requests']} store requests in {took:.1f}s "
                f"by {pids} workers; {counters['rate_limited']} answered 429"
            )
            # More than twice the quota answered without a 429: they spanned three windows.
            assert counters["requests"] >= EVENTS > 2 * QUOTA
            assert pids >= 2  # more than one process spent the quota
            assert counters["rate_limited"] == 0
            with db.engine.connect() as conn:
                row = conn.execute(
                    text("SELECT requests, rate_limited FROM sous_quota_budget")
                ).one()
            assert row.requests >= EVENTS  # every process's requests went through the table
        finally:
            cluster.stop()
            db.dispose()
