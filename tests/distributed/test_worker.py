"""``sous worker`` and the functions the composition root and ``sous migrate`` call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from engine.clock import SystemClock
from engine.queue.procrastinate import ProcrastinateJobQueue
from engine.store.db import Database
from sous.migrate import upgrade
from sous.settings import Settings
from sous.worker import QueueSettings, make_queue, migrate_queue
from tests.distributed.pg import fresh_database

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def test_settings_choose_the_queue(tmp_path: Path, pg_url: str) -> None:
    sqlite = Database(f"sqlite:///{tmp_path / 's.db'}")
    assert make_queue(Settings(), sqlite, SystemClock()) is None
    with pytest.raises(SystemExit, match="PostgreSQL"):
        make_queue(Settings(queue="procrastinate"), sqlite, SystemClock())
    pg = Database(pg_url)
    queue = make_queue(Settings(queue="procrastinate", database_url=pg_url), pg, SystemClock())
    assert isinstance(queue, ProcrastinateJobQueue)
    sqlite.dispose()
    pg.dispose()


def test_queue_tuning_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOUS_QUEUE_STALLED_AFTER", "7.5")
    monkeypatch.setenv("SOUS_QUEUE", "procrastinate")  # the mode itself is not a tuning knob
    assert QueueSettings().tuning().stalled_after == 7.5


def test_migrate_installs_the_queue_schema_in_distributed_mode() -> None:
    with fresh_database(prepare=False) as url:
        engine = create_engine(url)
        upgrade(engine)
        assert migrate_queue(Settings(), engine) is None
        assert "created" in (migrate_queue(Settings(queue="procrastinate"), engine) or "")
        assert "is at" in (migrate_queue(Settings(queue="procrastinate"), engine) or "")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar()
        engine.dispose()


def test_sous_worker_runs_and_stops_cleanly(tmp_path: Path, pg_url: str) -> None:
    alive = tmp_path / "alive"
    env = dict(
        os.environ, SOUS_DATABASE_URL=pg_url, SOUS_QUEUE_HEARTBEAT="0.2", PYTHONPATH=str(ROOT)
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sous.cli",
                "worker",
                "--alive-file",
                str(alive),
                "--workers",
                "2",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        # The alive file may be written just after the log line: wait for both.
        while "is taking jobs" not in log.read_text(errors="replace") or not alive.exists():
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        assert alive.exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
    db = Database(pg_url)
    with db.engine.connect() as conn:  # it unregistered: nothing it held waits for a timeout
        assert conn.execute(text("SELECT count(*) FROM procrastinate_workers")).scalar_one() == 0
    db.dispose()
