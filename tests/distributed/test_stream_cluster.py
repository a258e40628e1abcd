"""The live stream across processes: ``sous serve`` (one run at a time) and two ``sous
worker`` processes on one PostgreSQL database. ``/v1/stream`` on the API process shows the
runs the workers execute (announced through ``NOTIFY``), every message carries an ``id:``, and
a client reconnecting with ``Last-Event-ID`` gets exactly what came after it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from engine.store.db import Database
from tests.distributed.cluster import Cluster
from tests.distributed.pg import fresh_database

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

RECIPE = {
    "id": "seen",
    "name": "seen live",
    "trigger": {"type": "custom.seen"},
    "flood": False,
    "actions": [{"id": "one", "use": "test.ledger", "with": {"note": "n={{ n }}", "pause_ms": 30}}],
}
FAST_QUEUE = {"SOUS_QUEUE_HEARTBEAT": "0.5", "SOUS_QUEUE_STALLED_AFTER": "2"}
FIRST, SECOND = 24, 16


@dataclass
class Reader:
    """One stream's messages: (id, kind, data)."""

    messages: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def succeeded(self) -> set[str]:
        return {d["id"] for _, k, d in self.messages if k == "run" and d["status"] == "succeeded"}

    async def read(self, response: httpx.Response) -> None:
        block: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line:
                name, _, value = line.partition(": ")
                block[name] = value
                continue
            if "event" in block and "data" in block:
                self.messages.append(
                    (block.get("id", ""), block["event"], json.loads(block["data"]))
                )
                self.changed.set()
            block = {}

    async def until(self, done: Any, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            left = deadline - time.monotonic()
            assert left > 0, f"the stream did not show it; it sent {len(self.messages)} messages"
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)


def number(stream_id: str) -> int:
    return int(stream_id.rsplit("-", 1)[1])


def run_ids(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return {r[0] for r in conn.execute(text("SELECT id FROM run"))}


def worker_runs(db: Database, pids: list[int]) -> set[str]:
    """Runs whose step a worker process executed (the ledger's key is ``<run id>:<step>``)."""
    with db.engine.connect() as conn:
        keys = conn.execute(text("SELECT key FROM ledger WHERE pid = ANY(:p)"), {"p": pids})
        return {k.split(":")[0] for k in keys.scalars()}


async def send(client: httpx.AsyncClient, numbers: range) -> None:
    for n in numbers:
        body = {"type": "custom.seen", "payload": {"n": n}}
        assert (await client.post("/v1/events", json=body)).status_code == 202


async def test_the_stream_shows_workers_runs_and_resumes_from_the_last_id(tmp_path: Path) -> None:
    with fresh_database() as url:
        cluster = Cluster(url, tmp_path, FAST_QUEUE)
        cluster.prepare(RECIPE)
        db = Database(url)
        try:
            cluster.serve(workers=1)
            workers = [cluster.worker(1), cluster.worker(2)]
            cluster.wait_ready()
            headers = {"Authorization": f"Bearer {cluster.key}"}
            base = f"http://127.0.0.1:{cluster.port}"
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
                first = Reader()
                async with client.stream("GET", "/v1/stream") as response:
                    assert response.status_code == 200
                    reading = asyncio.create_task(first.read(response))
                    await send(client, range(FIRST))
                    await first.until(lambda: len(first.succeeded()) >= FIRST // 2)
                    reading.cancel()
                last_id = first.messages[-1][0]
                await send(client, range(FIRST, FIRST + SECOND))
                everything = FIRST + SECOND
                deadline = time.monotonic() + 60
                while len(run_ids(db)) < everything:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
                second = Reader()
                resume = {"Last-Event-ID": last_id}
                async with client.stream("GET", "/v1/stream", headers=resume) as response:
                    reading = asyncio.create_task(second.read(response))
                    await second.until(
                        lambda: first.succeeded() | second.succeeded() >= run_ids(db)
                    )
                    reading.cancel()
            ran_in_workers = worker_runs(db, [w.popen.pid for w in workers])
        finally:
            cluster.stop()
            db.dispose()
    ids = [m[0] for m in first.messages + second.messages]
    print(
        f"\n{everything} runs, {len(ran_in_workers)} of them by workers; "
        f"{len(first.messages)} messages, then {len(second.messages)} after Last-Event-ID"
    )
    assert all(ids)  # every message has an id
    assert [number(i) for i in ids] == list(range(number(ids[0]), number(ids[0]) + len(ids)))
    assert not any(kind == "gap" for _, kind, _ in second.messages)
    streamed = first.succeeded() | second.succeeded()
    assert len(streamed) == everything
    assert ran_in_workers  # the workers ran some (serve runs one at a time) ...
    assert ran_in_workers <= streamed  # ... and the API process's stream showed them
