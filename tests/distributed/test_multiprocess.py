"""Distributed mode end to end: ``sous serve`` and three ``sous worker`` processes on loopback
against a fresh PostgreSQL database; a burst of events over HTTP; one worker killed with SIGKILL
mid-burst. Every run must be executed exactly once, the dead worker's jobs by the others."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from engine.store.db import Database
from tests.distributed.cluster import Cluster
from tests.distributed.pg import fresh_database

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

EVENTS = 2000
STEPS = 2
RECIPE = {
    "id": "burst",
    "name": "burst",
    "trigger": {"type": "custom.burst"},
    "flood": False,  # the engine's default flood limit would hold a burst this size
    "actions": [
        {"id": "one", "use": "test.ledger", "with": {"note": "n={{ n }}", "pause_ms": 5}},
        {"id": "two", "use": "test.ledger", "with": {"note": "n={{ n }}", "pause_ms": 5}},
    ],
}
FAST_QUEUE = {
    "SOUS_QUEUE_HEARTBEAT": "0.5",
    "SOUS_QUEUE_STALLED_AFTER": "2",
    "SOUS_QUEUE_POLL": "0.5",
}


def scalar(db: Database, sql: str, **params: object) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


async def burst(cluster: Cluster, db: Database, victim_pid: int) -> dict[str, int]:
    """Send the events; SIGKILL the victim once a quarter of the steps are done."""
    killed: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {cluster.key}"}
    sent = 0

    async def send(client: httpx.AsyncClient, numbers: range) -> None:
        nonlocal sent
        for n in numbers:
            body = {"type": "custom.burst", "payload": {"n": n}, "dedup_key": f"burst-{n}"}
            for attempt in range(3):
                # The dedup key makes a resend safe when a kept-alive connection is dropped.
                try:
                    response = await client.post("/v1/events", json=body, headers=headers)
                    break
                except httpx.TransportError:
                    if attempt == 2:
                        raise
            assert response.status_code == 202, response.text
            sent += 1

    async def assassin() -> None:
        for _ in range(100_000):  # a poll of another process's progress
            if scalar(db, "SELECT count(*) FROM ledger") >= EVENTS * STEPS // 4:
                break
            await asyncio.sleep(0.05)
        # Freeze the victim and count what it holds; kill it once it holds something (a frozen
        # process cannot finish a job between the count and the kill).
        held = 0
        for _ in range(1000):
            os.kill(victim_pid, signal.SIGSTOP)
            await asyncio.sleep(0.05)  # let a commit already on the wire land
            held = scalar(
                db,
                "SELECT count(*) FROM procrastinate_jobs WHERE worker_id = :w AND status = 'doing'",
                w=killed["worker_id"],
            )
            if held:
                break
            os.kill(victim_pid, signal.SIGCONT)
            await asyncio.sleep(0.02)
        os.kill(victim_pid, signal.SIGKILL)
        killed.update(
            held=held, sent_before=sent, done_before=scalar(db, "SELECT count(*) FROM ledger")
        )

    base = f"http://127.0.0.1:{cluster.port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        killed["worker_id"] = cluster.procs[1].worker_id() or -1
        chunks = [range(i, EVENTS, 16) for i in range(16)]
        await asyncio.gather(assassin(), *(send(client, c) for c in chunks))
    return killed


async def test_a_burst_runs_exactly_once_while_a_worker_is_killed(tmp_path: Path) -> None:
    with fresh_database() as url:
        cluster = Cluster(url, tmp_path, FAST_QUEUE)
        recipe_uid = cluster.prepare(RECIPE)
        db = Database(url)
        try:
            cluster.serve(workers=1)
            victim = cluster.worker(1)
            cluster.worker(2)
            cluster.worker(3)
            cluster.wait_ready()
            started = time.monotonic()
            killed = await burst(cluster, db, victim.popen.pid)
            deadline = time.monotonic() + 90
            while scalar(db, "SELECT count(*) FROM run WHERE status = 'succeeded'") < EVENTS:
                assert time.monotonic() < deadline, (
                    "runs did not finish: " + cluster.procs[2].output()[-2000:]
                )
                await asyncio.sleep(0.2)
            elapsed = time.monotonic() - started
            assert victim.popen.wait(5) == -signal.SIGKILL

            runs = scalar(db, "SELECT count(*) FROM run WHERE recipe_uid = :u", u=recipe_uid)
            steps = scalar(db, "SELECT count(*) FROM step WHERE status = 'succeeded'")
            ledger = scalar(db, "SELECT count(*) FROM ledger")
            attempts = scalar(db, "SELECT count(*) FROM ledger_attempts")
            left = scalar(db, "SELECT count(*) FROM procrastinate_jobs")
            victims_steps = scalar(
                db, "SELECT count(*) FROM ledger WHERE pid = :p", p=victim.popen.pid
            )
            print(
                f"\n{EVENTS} events, {runs} runs in {elapsed:.1f}s; victim held {killed['held']} "
                f"job(s) when killed after {killed['done_before']} steps, "
                f"{victims_steps} of them its own; "
                f"{attempts - ledger} step(s) executed again after the kill"
            )
            assert runs == EVENTS
            assert steps == EVENTS * STEPS
            assert ledger == EVENTS * STEPS  # one row per (run, step): none lost
            assert left == 0  # no job left behind, todo or doing
            assert killed["held"] > 0  # it died holding jobs ...
            assert victims_steps > 0  # ... after doing some work; the others finished its jobs
            assert scalar(db, "SELECT count(*) FROM run WHERE status <> 'succeeded'") == 0
        finally:
            cluster.stop()
            db.dispose()
