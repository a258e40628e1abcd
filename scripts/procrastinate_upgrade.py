"""Upgrade across the procrastinate boundary: a database made when Sous ran an older
procrastinate 3 (its schema, recorded by ``sous migrate``, with jobs waiting in it) is migrated
by today's ``sous migrate`` and its jobs are then run by today's queue adapter.

    python scripts/procrastinate_upgrade.py [--from 3.0.2] [--server postgresql+psycopg://…]

Fetches the older procrastinate's wheel with pip (only to read its ``schema.sql``), makes a
scratch database on the server (dropped afterwards), and prints what was done. Exit status 0
when the migration and the jobs went through, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
import zipfile
from functools import partial
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.clock import SystemClock  # noqa: E402
from engine.queue.base import NewJob  # noqa: E402
from engine.queue.procrastinate import ProcrastinateJobQueue, QueueTuning, install_schema  # noqa: E402
from engine.store.db import Database  # noqa: E402
from sous.migrate import upgrade  # noqa: E402

SERVER = os.environ.get(
    "SOUS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
OLD_JOBS = (
    "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status)"
    " VALUES ('sous', 'run', NULL, '{\"ref\": \"before-upgrade\"}', 'todo')",
    "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status, scheduled_at)"
    " VALUES ('sous', 'run', 'rcp_1', '{\"ref\": \"delayed\"}', 'todo', now() + interval '1 day')",
)


def old_schema(version: str, folder: Path) -> str:
    """``schema.sql`` of procrastinate ``version`` (its wheel fetched with pip)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(folder),
         f"procrastinate=={version}"],
        check=True,
    )  # fmt: skip
    wheel = next(folder.glob(f"procrastinate-{version}-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        return archive.read("procrastinate/sql/schema.sql").decode("utf-8")


def as_it_was(url: str, version: str, schema: str) -> None:
    """Sous's tables, the old procrastinate schema as ``sous migrate`` recorded it, and jobs."""
    engine = create_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute(schema)
        raw.execute(
            "CREATE TABLE sous_procrastinate_schema "
            "(version text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        raw.execute("INSERT INTO sous_procrastinate_schema (version) VALUES (%s)", (version,))
        for statement in OLD_JOBS:
            raw.execute(statement)
    engine.dispose()


async def run_jobs(url: str) -> list[str]:
    """Take and finish every due job with today's adapter; the refs, in order."""
    db = Database(url)
    queue = ProcrastinateJobQueue(db, SystemClock(), QueueTuning(poll=0.2))
    done: list[str] = []
    try:
        await db.writer.write(lambda tx: queue.enqueue(tx, [NewJob("run", "after-upgrade")]))
        for _ in range(2):
            job = await asyncio.wait_for(queue.get(), 10)
            await db.writer.write(partial(queue.complete, job=job))
            done.append(job.ref)
        if queue.depth() != 1 or queue.due() != 0:
            raise AssertionError("the delayed job from before the upgrade was lost or ran early")
    finally:
        await queue.close()
        db.writer.close()
        db.dispose()
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="old", default="3.0.2", help="the older procrastinate")
    parser.add_argument("--server", default=SERVER, help="a PostgreSQL server URL")
    args = parser.parse_args(argv)
    name = f"sous_upgrade_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.server.rsplit("/", 1)[0] + f"/{name}"
    try:
        with tempfile.TemporaryDirectory() as folder:
            schema = old_schema(args.old, Path(folder))
        as_it_was(url, args.old, schema)
        engine = create_engine(url)
        print(install_schema(engine))  # what `sous migrate` does
        print(install_schema(engine))  # and again: nothing to do
        engine.dispose()
        done = asyncio.run(run_jobs(url))
        print(f"jobs run after the upgrade: {', '.join(done)}; the delayed one still waits")
        if sorted(done) != ["after-upgrade", "before-upgrade"]:
            print(f"unexpected jobs: {done}", file=sys.stderr)
            return 1
        return 0
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
