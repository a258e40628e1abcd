"""The live stream across processes: two ``sous serve`` replicas (one run at a time each) and
two ``sous worker`` processes on one PostgreSQL database. ``/v1/stream`` on either API process
shows the runs the workers execute (announced through ``NOTIFY``), every message carries an
``id:`` that means the same on every replica, and a client reconnecting to the other replica
with ``Last-Event-ID`` gets exactly what came after it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
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
EARLY, FIRST, SECOND = 4, 24, 16
EVERYTHING = EARLY + FIRST + SECOND


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


def run_ids(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return {r[0] for r in conn.execute(text("SELECT id FROM run"))}


def worker_runs(db: Database, pids: list[int]) -> set[str]:
    """Runs whose step a worker process executed (the ledger's key is ``<run id>:<step>``)."""
    with db.engine.connect() as conn:
        keys = conn.execute(text("SELECT key FROM ledger WHERE pid = ANY(:p)"), {"p": pids})
        return {k.split(":")[0] for k in keys.scalars()}


async def send(client: httpx.AsyncClient, base: str, numbers: range) -> None:
    for n in numbers:
        body = {"type": "custom.seen", "payload": {"n": n}}
        assert (await client.post(f"{base}/v1/events", json=body)).status_code == 202


@contextlib.asynccontextmanager
async def streaming(
    client: httpx.AsyncClient, base: str, last_id: str | None = None
) -> AsyncIterator[Reader]:
    """``/v1/stream`` of ``base`` read in the background while the block runs (the client is
    subscribed once it is entered); the connection is closed when it ends."""
    reader = Reader()
    headers = {"Last-Event-ID": last_id} if last_id else {}
    async with client.stream("GET", f"{base}/v1/stream", headers=headers) as response:
        assert response.status_code == 200
        reading = asyncio.create_task(reader.read(response))
        try:
            yield reader
        finally:
            reading.cancel()


async def wait_for_runs(db: Database, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(run_ids(db)) < count:
        assert time.monotonic() < deadline, f"{len(run_ids(db))} runs of {count}"
        await asyncio.sleep(0.1)


def kinds(answer: httpx.Response) -> list[tuple[str, str]]:
    """The (id, kind) of each message of a stream that ended."""
    found = []
    for block in answer.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append((fields.get("id", ""), fields["event"]))
    return found


async def test_a_client_resumes_on_another_api_process_from_its_last_id(tmp_path: Path) -> None:
    with fresh_database() as url:
        cluster = Cluster(url, tmp_path, FAST_QUEUE)
        cluster.prepare(RECIPE)
        db = Database(url)
        try:
            cluster.serve(workers=1)
            workers = [cluster.worker(1), cluster.worker(2)]
            cluster.wait_ready()
            headers = {"Authorization": f"Bearer {cluster.key}"}
            a = f"http://127.0.0.1:{cluster.port}"
            async with httpx.AsyncClient(headers=headers, timeout=60) as client:
                async with streaming(client, a) as early:  # before replica B exists
                    await send(client, a, range(EARLY))
                    await early.until(lambda: len(early.succeeded()) >= EARLY)
                early_id, early_runs = early.messages[0][0], run_ids(db)
                cluster.serve(workers=1)
                cluster.wait_ready()  # B listens from before it answers
                b = f"http://127.0.0.1:{cluster.ports[1]}"
                async with streaming(client, a, early_id) as reference:  # A, all along
                    async with streaming(client, a) as first:
                        await send(client, a, range(EARLY, EARLY + FIRST))
                        await first.until(lambda: len(first.succeeded()) >= FIRST // 2)
                    last_id = first.messages[-1][0]  # the client went away here ...
                    await send(client, b, range(EARLY + FIRST, EVERYTHING))
                    await wait_for_runs(db, EVERYTHING)
                    async with streaming(client, b, last_id) as second:  # ... and came back to B
                        await second.until(
                            lambda: (
                                first.succeeded() | second.succeeded() >= run_ids(db) - early_runs
                            )
                        )
                    end = second.messages[-1][0]
                    await reference.until(lambda: end in {m[0] for m in reference.messages})
                too_old = await client.get(
                    f"{b}/v1/stream?max_seconds=1", headers={"Last-Event-ID": early_id}
                )
                kept = await client.get(
                    f"{a}/v1/stream?max_events=1", headers={"Last-Event-ID": early_id}
                )
            ran_in_workers = worker_runs(db, [w.popen.pid for w in workers])
        finally:
            cluster.stop()
            db.dispose()
    ids = [m[0] for m in reference.messages]
    print(
        f"\n{EVERYTHING} runs, {len(ran_in_workers)} of them by workers; "
        f"{len(first.messages)} messages from A, then {len(second.messages)} from B"
    )
    assert all(ids)  # every message has an id, the same on both replicas:
    assert [int(i) for i in ids] == list(range(int(early_id) + 1, int(ids[-1]) + 1))
    start, resumed = ids.index(first.messages[0][0]), ids.index(last_id) + 1
    assert first.messages == reference.messages[start:resumed]
    assert second.messages == reference.messages[resumed : resumed + len(second.messages)]
    assert not any(kind == "gap" for _, kind, _ in reference.messages + second.messages)
    assert len(first.succeeded() | second.succeeded()) == FIRST + SECOND
    assert ran_in_workers  # the workers ran some (each API process runs one at a time) ...
    assert ran_in_workers - early_runs <= first.succeeded() | second.succeeded()  # ... shown
    assert kinds(too_old)[0] == ("", "gap")  # from before B listened: gap on B ...
    assert kinds(kept) == [(str(int(early_id) + 1), early.messages[1][1])]  # ... not on A
