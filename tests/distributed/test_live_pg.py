"""Live notifications between processes through PostgreSQL (two relays in one test process,
each with its own connections, as two processes would have): what one engine announces
reaches the other's hub, not its own twice; many notifications go in few NOTIFYs; an event
with too many runs to fit is announced without them and the listener reads them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import text

from api.live import LiveHub
from engine import Engine
from engine.clock import ManualClock
from engine.registry import Registry
from engine.store.db import Database
from sous.container import connectors
from sous.live import PAYLOAD, PgRelay, pack


def test_notifications_are_packed_into_payloads_postgresql_accepts() -> None:
    runs = [("run", {"id": f"run_{n:030d}", "status": "succeeded"}) for n in range(500)]
    payloads = pack("me", runs)
    assert 1 < len(payloads) < 20
    assert all(len(p) <= PAYLOAD for p in payloads)
    unpacked = [m for p in payloads for m in json.loads(p)["m"]]
    assert [tuple(m) for m in unpacked] == [(k, d) for k, d in runs]
    big = (
        "event",
        {"id": "evt_1", "workspace": "w", "runs": [f"run_{n:030d}" for n in range(300)]},
    )
    (only,) = pack("me", [big])
    assert json.loads(only)["m"] == [["event", {"id": "evt_1", "workspace": "w", "runs": None}]]


class Heard:
    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.changed = asyncio.Event()

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        self.got.append((kind, dict(data)))
        self.changed.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.got) < count:
                self.changed.clear()
                await self.changed.wait()


@pytest.mark.postgres
async def test_one_process_hears_what_another_announces(pg_db: Database) -> None:
    clock = ManualClock()
    engines = [Engine(pg_db, Registry(connectors()), clock=clock) for _ in range(2)]
    hubs = [LiveHub(e, keep=True) for e in engines]
    relays = [PgRelay(pg_db, hub) for hub in hubs]
    for engine, relay, hub in zip(engines, relays, hubs, strict=True):
        engine.subscribe(relay.publish)
        hub.on_demand = relay.listen
        relay.start()
    with pg_db.engine.begin() as conn:  # an event whose runs the listener will have to read
        conn.execute(
            text(
                "INSERT INTO run (id, workspace_id, recipe_uid, recipe_version, event_id, status,"
                " created_at, next_step, depth) SELECT 'run_' || lpad(n::text, 30, '0'), 'w',"
                " 'rcp' || n, 1, 'evt_big', 'succeeded', now(), 0, 0 FROM generate_series(1, 300) n"
            )
        )
    heard, own = Heard(), Heard()
    try:
        hubs[1].subscribe(heard)
        hubs[0].subscribe(own)
        assert await hubs[1].listening() and await hubs[0].listening()
        for n in range(200):
            engines[0].announce(f"run_{n}", "rcp", "w", "succeeded")
        runs = [f"run_{n:030d}" for n in range(1, 301)]
        data = {"id": "evt_big", "type": "custom.x", "store": None, "workspace": "w", "runs": runs}
        engines[0]._emit("event", data)
        engines[0].announce("run_last", "rcp", "w", "succeeded")
        await heard.until(202)  # one NOTIFY connection keeps the order: nothing else came first
    finally:
        for relay in relays:
            await relay.stop()
    assert [d["id"] for k, d in heard.got[:200]] == [f"run_{n}" for n in range(200)]
    assert heard.got[200] == ("event", data)  # its runs read back from the run table
    assert heard.got[201][1]["id"] == "run_last"
    assert len(own.got) == 202  # its own engine's, heard once (not again through PostgreSQL)
    assert relays[0].sent == 202 and relays[1].heard == 202 and relays[0].heard == 0
