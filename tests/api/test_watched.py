"""Readers never block the engine: a read held open, a listener that reads, and a passing write
fault each leave the writer, and every accepted event, going (SQLite, the embedded default)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

import engine.store.db as db_module
from api.deps import get_session
from engine import Engine
from engine.store.db import Database, Tx, write_until_done
from engine.store.models import RunRow, StepRow
from sous.container import Container
from tests.api.conftest import RECIPE, product

Headers = dict[str, str]
STEPS = StepRow.__table__  # type: ignore[attr-defined]


async def _recipe(client: httpx.AsyncClient, admin: Headers) -> None:
    assert (await client.post("/v1/recipes", json=RECIPE, headers=admin)).status_code == 201


async def _send(client: httpx.AsyncClient, admin: Headers) -> httpx.Response:
    body = {"type": "test.stock", "payload": product(0)}
    return await asyncio.wait_for(client.post("/v1/events", json=body, headers=admin), 5)


async def test_a_read_held_open_never_makes_the_writer_wait(
    client: httpx.AsyncClient, admin: Headers, container: Container, engine: Engine
) -> None:
    await _recipe(client, admin)
    held = get_session(container)  # the session the API's list and show routes read with
    session = next(held)
    try:
        count = select(func.count()).select_from(RunRow)
        before = session.execute(count).scalar_one()  # its snapshot is taken
        sent = await _send(client, admin)  # the engine writes the event and its run
        assert sent.status_code == 202, sent.text
        await engine.drain()
        # the held read still sees its snapshot; a new read sees the committed run
        assert session.execute(count).scalar_one() == before
    finally:
        for _ in held:  # runs the dependency's exit: the session closes
            pass
    runs = (await client.get("/v1/runs", headers=admin)).json()["data"]
    assert [r["status"] for r in runs] == ["succeeded"]


async def test_a_listener_reading_the_database_never_waits_for_a_write_lock(
    client: httpx.AsyncClient, admin: Headers, container: Container, engine: Engine
) -> None:
    await _recipe(client, admin)
    uid = next(iter(engine.index.by_uid))
    seen: list[str | None] = []

    def listener(kind: str, data: dict[str, Any]) -> None:  # reads the database on the loop
        stored = engine.recipes.by_uid(uid)
        seen.append(stored.recipe.id if stored else None)

    engine.subscribe(listener)
    # another connection (the CLI, a thread's write) holds the write lock meanwhile
    with container.db.engine.connect() as other, other.begin():
        engine.announce("run_x", uid, "default", "running")
    assert seen == [RECIPE["id"]]


async def test_runs_complete_while_a_dashboard_reads(
    client: httpx.AsyncClient, admin: Headers, engine: Engine
) -> None:
    """The watched engine in miniature: writers and a reader of every dashboard route at once."""
    await _recipe(client, admin)
    first = (await _send(client, admin)).json()
    await engine.drain()
    run_id = first["runs"][0]
    paths = ["/v1/runs?limit=50", "/v1/events?limit=50", f"/v1/runs/{run_id}"]
    answers: list[int] = []

    async def write() -> None:
        for _ in range(20):
            answers.append((await _send(client, admin)).status_code)

    async def read() -> None:
        for n in range(60):
            answers.append((await client.get(paths[n % 3], headers=admin)).status_code)

    await asyncio.gather(write(), write(), write(), read(), read())
    await engine.drain()
    assert sorted(set(answers)) == [200, 202]
    runs = (await client.get("/v1/runs?limit=100", headers=admin)).json()["data"]
    assert len(runs) == 61
    assert {r["status"] for r in runs} == {"succeeded"}


async def test_a_write_that_meets_a_passing_fault_is_written_again(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_MS", 20)
    db = Database(f"sqlite:///{tmp_path / 'fault.db'}")
    db.create_all()
    release = threading.Event()
    holding = threading.Event()

    def hold_the_lock() -> None:  # another process's write, held until the first retry
        with db.engine.connect() as other, other.begin():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    holding.wait(10)
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        release.set()
        await asyncio.to_thread(holder.join)

    row = {"run_id": "r1", "index": 0, "step_id": "s", "use": "x", "status": "ok", "attempts": 1}

    def write(tx: Tx) -> str:
        tx.insert(STEPS, [row])
        return "written"

    try:
        assert await write_until_done(db.writer, write, sleep, "a trace row") == "written"
    finally:
        release.set()
        holder.join()
    assert delays == [0.05]
    assert db.read_sync(lambda tx: tx.conn.execute(select(STEPS.c.run_id)).scalars().all()) == [
        "r1"
    ]
    db.dispose()


async def test_a_write_that_fails_for_good_is_not_written_again(tmp_path: Any) -> None:
    db = Database(f"sqlite:///{tmp_path / 'bad.db'}")
    db.create_all()
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    def bad(tx: Tx) -> None:
        tx.conn.exec_driver_sql("INSERT INTO no_such_table VALUES (1)")

    with pytest.raises(OperationalError, match="no such table"):
        await write_until_done(db.writer, bad, sleep, "a bad write")
    assert delays == []
    db.dispose()
