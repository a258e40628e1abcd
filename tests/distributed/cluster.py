"""A Sous cluster on loopback for the multi-process test and the benchmark: ``sous serve`` and
``sous worker`` processes (through :mod:`tests.distributed.proc`) on one PostgreSQL database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from api.keys import create_key, workspace_id
from engine.clock import SystemClock
from engine.registry import Registry
from engine.store.db import Database
from engine.store.recipes import SqlRecipeStore
from sous.container import connectors
from sous.sandbox import free_port
from tests.distributed.proc import LEDGER_TABLES, ledger_connector

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = "cluster"


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def worker_id(self) -> int | None:
        found = re.search(r"sous worker (\d+) is taking jobs", self.output())
        return int(found.group(1)) if found else None


@dataclass
class Cluster:
    url: str
    folder: Path
    queue_env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    port: int = 0
    """The first ``sous serve`` process's port."""
    ports: list[int] = field(default_factory=list)
    """Every ``sous serve`` process's port, in the order they started."""
    key: str = ""

    def prepare(self, recipe: dict[str, Any]) -> str:
        """Ledger tables, an API key and ``recipe``; returns the recipe's uid."""
        db = Database(self.url)
        try:
            with db.engine.begin() as conn:
                for statement in LEDGER_TABLES:
                    conn.execute(text(statement))
            self.key = create_key(db, WORKSPACE, ["read", "write", "admin"], "cluster")
            store = SqlRecipeStore(db, Registry([*connectors(), ledger_connector()]), SystemClock())
            return store.create(workspace_id(WORKSPACE), recipe).uid
        finally:
            db.dispose()

    def env(self, workers: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            SOUS_DATABASE_URL=self.url,
            SOUS_QUEUE="procrastinate",
            SOUS_WORKERS=str(workers),
            PYTHONPATH=str(ROOT),
            **self.queue_env,
        )
        return env

    def spawn(self, name: str, args: list[str], workers: int) -> Proc:
        log = self.folder / f"{name}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "tests.distributed.proc", *args],
            cwd=ROOT,
            env=self.env(workers),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        handle.close()
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def serve(self, workers: int = 1) -> Proc:
        """Another ``sous serve`` process (an API replica behind the same balancer)."""
        port = free_port()
        self.ports.append(port)
        self.port = self.ports[0]
        name = "api" if len(self.ports) == 1 else f"api{len(self.ports)}"
        return self.spawn(name, ["serve", "--port", str(port)], workers)

    def healthy(self) -> bool:
        """Every ``sous serve`` process answers."""
        import httpx

        try:
            return all(
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
                for port in self.ports
            )
        except httpx.HTTPError:
            return False

    def worker(self, n: int, workers: int = 8) -> Proc:
        return self.spawn(f"worker{n}", ["worker"], workers)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every API process answers and every worker has registered with the queue."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited early:\n{proc.output()[-3000:]}")
            workers = [p for p in self.procs if p.name.startswith("worker")]
            ready = all(p.worker_id() is not None for p in workers)
            if ready and self.healthy():
                return
            time.sleep(0.1)
        logs = "\n".join(f"--- {p.name}\n{p.output()[-2000:]}" for p in self.procs)
        raise TimeoutError(f"the cluster did not come up:\n{logs}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.popen.wait(10)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(5)
