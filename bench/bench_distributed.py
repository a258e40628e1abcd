"""Distributed mode: completed runs/s and latency with 1, 2 and 4 ``sous worker`` processes on
PostgreSQL, beside the embedded engine (one process, SQLite) on the same events and recipe.

One ingest process (this one) stores events, runs and jobs in PostgreSQL through the engine with
the procrastinate queue, as ``sous serve`` does behind its HTTP API (HTTP is measured by
bench_http.py); the workers take the jobs. Latency is a run's ``created_at`` (ingest) to its
``finished_at`` (last step saved), both from the database. CPU is counted per process from
/proc: the workers, this process (ingest) and the PostgreSQL backends serving the benchmark's
database; CPU per run is what predicts larger machines (see docs/scaling.md).

    python -m bench.bench_distributed [--events 4000] [--workers 1 2 4] [--rate N]
    python -m bench.bench_distributed --black-friday [--bf-workers 2] [--bf-webhooks 10000]

A burst (the default) measures throughput; its latency is mostly waiting behind the burst.
``--rate`` sends events at a steady pace below capacity: the latency of a system keeping up.
``--black-friday`` runs bench_black_friday's burst with workers sharing one store's quota
(:mod:`bench.distributed_black_friday`): requests per webhook and 429 answers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, select, text

from bench.common import RECIPE, percentile, temp_engine
from engine import Engine
from engine.clock import SystemClock
from engine.context import Services
from engine.model.events import NewEvent
from engine.queue.procrastinate import ProcrastinateJobQueue, install_schema
from engine.store.db import Database
from engine.store.models import RunRow
from sous.container import build_registry
from sous.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get(
    "SOUS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PAYLOAD = {
    "product": {
        "id": 1,
        "name": "Cat Eye Sunglasses",
        "inventory_level": 0,
        "inventory_tracking": "product",
    }
}
TICK = os.sysconf("SC_CLK_TCK")
RUNS = RunRow.__table__  # type: ignore[attr-defined]


@dataclass
class Result:
    label: str
    rate: float
    p50: float
    p99: float
    cpu: dict[str, float]

    def line(self, events: int) -> str:
        per_run = "  ".join(f"{k} {v / events * 1e6:,.0f}" for k, v in self.cpu.items())
        total = sum(self.cpu.values()) / events * 1e6
        return (
            f"{self.label:<26} {self.rate:>6,.0f} runs/s  p50 {self.p50:>7.1f} ms"
            f"  p99 {self.p99:>8.1f} ms  CPU µs/run: {per_run}  (total {total:,.0f})"
        )


def spawn(logs: list[Path], env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """One ``sous worker`` per log file."""
    procs = []
    for log in logs:
        with log.open("wb") as out:
            command = [sys.executable, "-m", "sous.cli", "worker"]
            procs.append(
                subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            )
    return procs


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def backend_cpu(database: str) -> float:
    """CPU of the PostgreSQL backends connected to ``database`` (their titles name it)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            total += cpu_seconds(int(entry.name))
    return total


RATE: float | None = None
"""Events per second to send (``--rate``); ``None``: as fast as ingestion goes (a burst)."""


async def feed(engine: Engine, events: int, concurrency: int, tag: str) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await engine.ingest(
                NewEvent(type="custom.stock", payload=PAYLOAD, dedup_key=f"{tag}-{i}")
            )

    if RATE is None:
        await asyncio.gather(*(one(i) for i in range(events)))
        return
    start, sent = time.monotonic(), []
    for i in range(events):
        await asyncio.sleep(max(0.0, start + i / RATE - time.monotonic()))
        sent.append(asyncio.create_task(one(i)))
    await asyncio.gather(*sent)


def timings(db: Database, events: int, timeout: float = 600) -> tuple[float, list[float]]:
    deadline = time.monotonic() + timeout
    with db.engine.connect() as conn:
        while True:
            done = conn.execute(
                text("SELECT count(*) FROM run WHERE finished_at IS NOT NULL")
            ).scalar_one()
            conn.commit()
            if done >= events:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {done} of {events} runs finished")
            time.sleep(0.1)
        rows = conn.execute(select(RUNS.c.created_at, RUNS.c.finished_at)).all()
    start = min(r[0] for r in rows)
    end = max(r[1] for r in rows)
    latencies = [(r[1] - r[0]).total_seconds() * 1000 for r in rows]
    return events / (end - start).total_seconds(), latencies


async def embedded(events: int, concurrency: int) -> Result:
    engine, folder = temp_engine(workers=16)
    engine.refresh(engine.recipes.create("default", RECIPE))
    await engine.start()
    cpu0 = time.process_time()
    await feed(engine, events, concurrency, "embedded")
    rate, latencies = await asyncio.to_thread(timings, engine.db, events)
    cpu = time.process_time() - cpu0
    await engine.stop()
    engine.db.dispose()
    shutil.rmtree(folder, ignore_errors=True)
    return Result(
        "embedded (SQLite, 1 proc)",
        rate,
        percentile(latencies, 50),
        percentile(latencies, 99),
        {"process": cpu},
    )


async def distributed(workers: int, events: int, concurrency: int, per_worker: int) -> Result:
    name = f"sous_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = SERVER.rsplit("/", 1)[0] + f"/{name}"
    procs: list[subprocess.Popen[bytes]] = []
    db = Database(url)
    try:
        upgrade(db.engine)
        install_schema(db.engine)
        engine = Engine(
            db,
            build_registry(),
            services=Services(),
            queue=ProcrastinateJobQueue(db, SystemClock()),
        )
        engine.refresh(engine.recipes.create("default", RECIPE))
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = dict(os.environ, SOUS_DATABASE_URL=url, SOUS_WORKERS=str(per_worker), PYTHONPATH=path)
        logs = [ROOT / f".bench-worker-{n}.log" for n in range(workers)]
        procs += await asyncio.to_thread(spawn, logs, env)
        while not all("is taking jobs" in log.read_text(errors="replace") for log in logs):
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(
                    "a worker exited:\n" + "\n".join(log.read_text() for log in logs)
                )
            await asyncio.sleep(0.1)
        worker_cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        db_cpu0, cpu0 = backend_cpu(name), time.process_time()
        await feed(engine, events, concurrency, "dist")
        ingest_cpu = time.process_time() - cpu0
        rate, latencies = await asyncio.to_thread(timings, db, events)
        cpu = {
            "workers": sum(cpu_seconds(p.pid) for p in procs) - worker_cpu0,
            "ingest": ingest_cpu,
            "postgres": backend_cpu(name) - db_cpu0,
        }
        for log in logs:
            log.unlink(missing_ok=True)
        label = f"procrastinate, {workers} worker{'s' if workers > 1 else ''}"
        return Result(label, rate, percentile(latencies, 50), percentile(latencies, 99), cpu)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                print(f"worker {proc.pid} did not stop within 30 s of SIGTERM; killed", flush=True)
                proc.kill()
                proc.wait(5)
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


async def main(events: int, counts: list[int], concurrency: int, per_worker: int) -> None:
    pace = "in a burst" if RATE is None else f"at {RATE:g}/s"
    print(f"{events} events {pace}, one recipe (two conditions, core.set), {concurrency} at once;")
    print(f"{os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.1f}")
    results = [await embedded(events, concurrency)]
    print(results[-1].line(events), flush=True)
    for count in counts:
        results.append(await distributed(count, events, concurrency, per_worker))
        print(results[-1].line(events), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--per-worker", type=int, default=16, help="concurrent runs per worker process"
    )
    parser.add_argument("--rate", type=float, default=None, help="events/s (default: a burst)")
    parser.add_argument("--black-friday", action="store_true", help="the Black Friday burst")
    parser.add_argument("--bf-workers", type=int, default=2)
    parser.add_argument("--bf-webhooks", type=int, default=10_000)
    parser.add_argument("--bf-products", type=int, default=500)
    parser.add_argument("--bf-seconds", type=float, default=60.0)
    args = parser.parse_args()
    if args.black_friday:
        from bench.distributed_black_friday import black_friday

        raise SystemExit(
            black_friday(
                SERVER, args.bf_workers, args.bf_webhooks, args.bf_products, args.bf_seconds
            )
        )
    RATE = args.rate
    asyncio.run(main(args.events, args.workers, args.concurrency, args.per_worker))
