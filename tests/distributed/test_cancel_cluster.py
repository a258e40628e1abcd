"""Cancelling across processes: ``sous serve`` and a ``sous worker`` on one PostgreSQL database.
A run the worker is executing, cancelled through the API process, ends ``cancelled`` at its
next step boundary: the step under way finishes (its trace is kept), the next never starts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from engine.store.db import Database
from tests.distributed.cluster import Cluster
from tests.distributed.pg import fresh_database
from tests.distributed.test_multiprocess import FAST_QUEUE, scalar

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

RECIPE = {
    "id": "slow",
    "name": "slow",
    "trigger": {"type": "custom.slow"},
    "actions": [
        {"id": "one", "use": "test.ledger", "with": {"note": "one", "pause_ms": 1500}},
        {"id": "two", "use": "test.ledger", "with": {"note": "two"}},
    ],
}


async def until(db: Database, sql: str, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not scalar(db, sql):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_run_executing_in_a_worker_is_cancelled_from_the_api(tmp_path: Path) -> None:
    with fresh_database() as url:
        cluster = Cluster(url, tmp_path, FAST_QUEUE)
        cluster.prepare(RECIPE)
        db = Database(url)
        try:
            cluster.serve(workers=1)
            cluster.worker(1)
            cluster.wait_ready()
            headers = {"Authorization": f"Bearer {cluster.key}"}
            base = f"http://127.0.0.1:{cluster.port}"
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
                body = {"type": "custom.slow", "payload": {}, "dedup_key": "slow-1"}
                assert (await client.post("/v1/events", json=body)).status_code == 202
                # the worker is inside step one (its ledger row is written before the pause)
                await until(db, "SELECT count(*) FROM ledger", "step one to start")
                run_id = str(scalar_text(db, "SELECT id FROM run"))
                response = await client.post(f"/v1/runs/{run_id}/cancel")
                assert response.status_code == 200, response.text
                await until(db, "SELECT count(*) = 0 FROM procrastinate_jobs", "the job to end")
                run = (await client.get(f"/v1/runs/{run_id}")).json()
            assert run["status"] == "cancelled", run
            assert scalar(db, "SELECT count(*) FROM ledger") == 1  # step two never ran
            steps = scalar_text(db, "SELECT string_agg(step_id || ':' || status, ',') FROM step")
            assert steps == "one:succeeded"
        finally:
            cluster.stop()
            db.dispose()


def scalar_text(db: Database, sql: str) -> object:
    with db.engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()
