"""Live notifications between processes through PostgreSQL (two relays in one test process,
each with its own connections, as two processes would have): every hub, the announcing
process's included, hears every notification once, through PostgreSQL, under the same ids in
the same order; many notifications go in few NOTIFYs; an event with too many runs to fit is
announced without them and the listener reads them. A client resumes on either hub; an id
older than a hub's ring, or from before notifications a hub missed, answers ``gap``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from api.live import GAP, LiveHub, Notice
from engine import Engine
from engine.clock import ManualClock
from engine.registry import Registry
from engine.store.db import Database
from sous.container import connectors
from sous.live import PAYLOAD, PgRelay, pack


def test_notifications_are_packed_into_payloads_postgresql_accepts() -> None:
    runs = [("run", {"id": f"run_{n:030d}", "status": "succeeded"}) for n in range(500)]
    payloads = pack(runs)
    assert 1 < len(payloads) < 20
    assert all(len(p) + len(" 9223372036854775807") <= PAYLOAD for _, p in payloads)
    unpacked = [m for _, p in payloads for m in json.loads(p)]
    assert [tuple(m) for m in unpacked] == [(k, d) for k, d in runs]
    assert [count for count, _ in payloads] == [len(json.loads(p)) for _, p in payloads]
    big = (
        "event",
        {"id": "evt_1", "workspace": "w", "runs": [f"run_{n:030d}" for n in range(300)]},
    )
    ((count, only),) = pack([big])
    assert count == 1
    assert json.loads(only) == [["event", {"id": "evt_1", "workspace": "w", "runs": None}]]


class Heard:
    """A subscriber: what it got, as (id, kind, data)."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str, dict[str, Any]]] = []
        self.changed = asyncio.Event()

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        self.got.append((data.id if isinstance(data, Notice) else "", kind, dict(data)))
        self.changed.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.got) < count:
                self.changed.clear()
                await self.changed.wait()

    def ids(self) -> list[int]:
        return [int(i) for i, kind, _ in self.got if kind != GAP]


Cluster = tuple[list[Engine], list[LiveHub], list[PgRelay]]


@pytest.fixture
async def two(pg_db: Database) -> AsyncIterator[Cluster]:
    """Two processes' engines, hubs (a ring of 50) and relays on one database, listening."""
    clock = ManualClock()
    engines = [Engine(pg_db, Registry(connectors()), clock=clock) for _ in range(2)]
    hubs = [LiveHub(e, keep=True, shared=True, ring=50) for e in engines]
    relays = [PgRelay(pg_db, hub) for hub in hubs]
    for engine, relay, hub in zip(engines, relays, hubs, strict=True):
        engine.subscribe(relay.publish)
        hub.on_demand = relay.listen
        relay.start()
    try:
        assert await hubs[0].listening() and await hubs[1].listening()
        yield engines, hubs, relays
    finally:
        for relay in relays:
            await relay.stop()


def announce(engine: Engine, runs: range) -> None:
    for n in runs:
        engine.announce(f"run_{n}", "rcp", "w", "succeeded")


def run_ids(heard: Heard) -> list[str]:
    return [d["id"] for _, kind, d in heard.got if kind == "run"]


@pytest.mark.postgres
async def test_every_process_hears_every_notification_under_the_same_ids(
    pg_db: Database, two: Cluster
) -> None:
    engines, hubs, relays = two
    with pg_db.engine.begin() as conn:  # an event whose runs the listener will have to read
        conn.execute(
            text(
                "INSERT INTO run (id, workspace_id, recipe_uid, recipe_version, event_id, status,"
                " created_at, next_step, depth) SELECT 'run_' || lpad(n::text, 30, '0'), 'w',"
                " 'rcp' || n, 1, 'evt_big', 'succeeded', now(), 0, 0 FROM generate_series(1, 300) n"
            )
        )
    other, own = Heard(), Heard()
    hubs[1].subscribe(other)
    hubs[0].subscribe(own)
    announce(engines[0], range(100))
    runs = [f"run_{n:030d}" for n in range(1, 301)]
    data = {"id": "evt_big", "type": "custom.x", "store": None, "workspace": "w", "runs": runs}
    engines[0]._emit("event", data)
    announce(engines[1], range(100, 200))  # the other process's, in between
    engines[0].announce("run_last", "rcp", "w", "succeeded")
    await other.until(202)
    await own.until(202)
    assert other.got == own.got  # the same messages, ids and order in both processes
    assert sorted(run_ids(own)) == sorted([f"run_{n}" for n in range(200)] + ["run_last"])
    mine = [r for r in run_ids(own) if r == "run_last" or int(r.split("_")[1]) < 100]
    assert mine == [f"run_{n}" for n in range(100)] + ["run_last"]  # each process's in order
    assert next(m for m in own.got if m[1] == "event")[2] == data  # runs read from the run table
    assert own.ids() == list(range(own.ids()[0], own.ids()[0] + 202))  # one by one
    assert relays[0].sent == 101 + 1 and relays[1].sent == 100
    assert relays[0].heard == relays[1].heard == 202


@pytest.mark.postgres
async def test_a_client_resumes_on_another_process_or_is_told_its_id_is_too_old(
    two: Cluster,
) -> None:
    engines, hubs, _ = two
    first, there = Heard(), Heard()
    hubs[0].subscribe(first)
    hubs[1].subscribe(there)
    announce(engines[0], range(40))
    await first.until(40)
    last_id = first.got[29][0]  # the client read 30, then reconnects to the other process
    resumed = Heard()
    _, lost = hubs[1].subscribe(resumed, last_id)
    assert not lost
    announce(engines[1], range(40, 45))
    await first.until(45)
    await resumed.until(15)
    assert resumed.got == first.got[30:]  # nothing missing, nothing twice
    announce(engines[0], range(45, 100))  # more than the ring of 50 holds since last_id
    await first.until(100)
    await there.until(100)
    late = Heard()
    _, lost = hubs[1].subscribe(late, last_id)
    assert lost  # too old: gap, then what the ring still holds
    assert late.got == first.got[-50:]
    _, lost = hubs[1].subscribe(Heard(), first.got[-1][0])
    assert not lost  # the newest one is fine


@pytest.mark.postgres
async def test_an_id_a_process_has_not_heard_yet_resumes_after_it(two: Cluster) -> None:
    engines, hubs, _ = two
    seen = Heard()
    hubs[0].subscribe(seen)
    announce(engines[0], range(3))
    await seen.until(3)
    ahead = str(int(seen.got[-1][0]) + 2)  # as if another process had heard two more already
    resumed = Heard()
    _, lost = hubs[1].subscribe(resumed, ahead)
    assert not lost
    announce(engines[0], range(3, 8))
    await seen.until(8)
    await resumed.until(3)
    assert resumed.got == seen.got[5:]
    _, lost = hubs[1].subscribe(Heard(), str(int(ahead) + 100_000))
    assert lost  # no process is that far ahead: not an id of this stream


@pytest.mark.postgres
async def test_a_listener_that_reconnected_after_missing_notifications_says_gap(
    two: Cluster,
) -> None:
    engines, hubs, relays = two
    watching, quiet = Heard(), Heard()
    hubs[1].subscribe(watching)
    announce(engines[0], range(5))
    await watching.until(5)
    await relays[1].listen()  # listening again without missing anything: no gap
    await relays[1].stop()  # the second process's connection drops ...
    announce(engines[0], range(5, 10))  # ... while these are sent
    await asyncio.wait_for(relays[0].stop(), 10)
    relays[0].start()
    await relays[1].listen()
    announce(engines[0], range(10, 12))
    await watching.until(8)
    assert [kind for _, kind, _ in watching.got] == ["run"] * 5 + [GAP] + ["run"] * 2
    assert run_ids(watching) == [f"run_{n}" for n in (0, 1, 2, 3, 4, 10, 11)]
    _, lost = hubs[1].subscribe(quiet, watching.got[4][0])
    assert lost  # from before the notifications it missed
    _, lost = hubs[1].subscribe(Heard(), watching.got[5 + 1][0])
    assert not lost  # from after them
