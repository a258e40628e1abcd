"""A watched engine: the ``bench_http`` load with and without a dashboard reading at the same time.

``sous serve`` (a fresh database each phase) takes 16 connections POSTing events for ``--seconds``.
In the watched phase a second process reads, ten times a second, what a merchant's dashboard
shows — the runs list, the events list, one run's trace and the backlog report, in turn — while
an SSE subscriber follows ``/v1/stream``. Printed for each phase: completed runs/s, runs not
completed, non-2xx answers, "database is locked" lines in the server's log; for the watched one
the reader's p50/p99 and how many stream messages it received; then the ratio.

Targets: watched throughput ≥ 90 % of unwatched, reader p99 ≤ 100 ms, 0 lock errors, 0 non-2xx,
every accepted event run to completion. ``--rounds N`` alternates the phases N times and reports
the median ratio, so that a burst of other work on the machine lands in one round, not in the
figure. Each phase also prints the server's CPU time per 1,000 completed runs: unlike runs/s, it
barely moves with other load on the machine, so its watched / unwatched ratio shows what the
reads cost the engine even on a busy machine. ``--database postgresql`` runs it on a fresh
PostgreSQL database (``SOUS_BENCH_POSTGRES``, default the local server) instead of embedded
SQLite.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from bench.bench_http import BODY, load_with_python, load_with_wrk
from bench.common import RECIPE, percentile
from sous.sandbox import free_port

SERVER = os.environ.get("SOUS_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STORE = "sousdemo"  # the sandbox's simulated store

READER = r"""
import json, sys, threading, time, httpx
base, key, seconds, rate = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
only, stream = sys.argv[5].split(",") if sys.argv[5] else [], sys.argv[6] == "1"
headers = {"Authorization": f"Bearer {key}"}
stream_messages = [0]

def follow():
    try:
        with httpx.stream("GET", f"{base}/v1/stream", params={"max_seconds": seconds},
                          headers=headers, timeout=seconds + 10) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    stream_messages[0] += 1
    except httpx.HTTPError:
        pass

sse = threading.Thread(target=follow, daemon=True)
if stream:
    sse.start()
lat, codes = [], {}
with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
    runs = c.get("/v1/runs?limit=1").json().get("data", [])
    run_path = f"/v1/runs/{runs[0]['id']}" if runs else "/v1/runs?limit=1"
    paths = ["/v1/runs?limit=50", "/v1/events?limit=50", run_path, "/v1/stores/%s/backlog"]
    paths = [p for p in paths if not only or any(p.startswith(o) for o in only)]
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        t0 = time.perf_counter()
        path = paths[n % len(paths)]
        r = c.get(path)
        lat.append((path.split("?")[0], (time.perf_counter() - t0) * 1000))
        codes[r.status_code] = codes.get(r.status_code, 0) + 1
        n += 1
        time.sleep(max(0.0, 1 / rate - (time.perf_counter() - t0)))
if stream:
    sse.join(timeout=15)
print(json.dumps({"latencies": lat, "codes": codes, "stream": stream_messages[0]}))
""".replace("%s", STORE)


@dataclass
class Phase:
    name: str
    accepted: int = 0
    completed: int = 0
    rate: float = 0.0
    non_2xx: int = 0
    locked: int = 0
    cpu: float = 0.0
    reader: dict[str, Any] = field(default_factory=dict)


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / f'{uuid.uuid4().hex[:6]}.db'}"
        return
    name = f"sous_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield SERVER.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def non_2xx(report: str) -> int:
    """Non-2xx answers in the load generator's report (wrk's or the Python client's)."""
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    if found:
        return int(found.group(1))
    codes = re.search(r"codes (\{.*\})", report)
    if not codes:
        return 0
    counts = ast.literal_eval(codes.group(1))
    return sum(int(v) for k, v in counts.items() if not 200 <= int(k) < 300)


def sandbox_key(log: Path, server: subprocess.Popen[bytes]) -> str:
    """The sandbox's API key, from its welcome banner (once the sandbox is ready)."""
    for _ in range(1200):
        found = re.search(r"API key \(sandbox\):\s+(sous_\S+)", log.read_text(errors="replace"))
        if found:
            return found.group(1)
        if server.poll() is not None:
            raise RuntimeError("sous serve --sandbox exited:\n" + log.read_text())
        time.sleep(0.1)
    raise RuntimeError("sous serve --sandbox did not become ready")


def count_runs(url: str) -> tuple[int, int]:
    """(load events stored, their runs succeeded), waiting up to 120 s for every run to end."""
    engine = create_engine(url)
    ours = "from run r join event e on e.id = r.event_id where e.type = 'custom.stock'"
    try:
        deadline = time.monotonic() + 120
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                going = conn.execute(text(f"select count(*) {ours} and r.finished_at is null"))
                if going.scalar_one() == 0:
                    break
                conn.rollback()
                time.sleep(0.5)
            q = "select count(*) from event where type = 'custom.stock'"
            events = conn.execute(text(q)).scalar_one()
            done = conn.execute(text(f"select count(*) {ours} and r.status = 'succeeded'"))
            return int(events), int(done.scalar_one())
    finally:
        engine.dispose()


def phase(name: str, url: str, folder: Path, args: argparse.Namespace, watched: bool) -> Phase:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUS_")}
    env |= {"SOUS_DATABASE_URL": url, "SOUS_LOG_LEVEL": "warning", "NO_COLOR": "1"}
    port, log = free_port(), folder / f"{name}.log"
    with log.open("w") as out:
        # the sandbox connects a simulated store, so the backlog report has one to read
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "sous"), "serve", "--sandbox", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base, result = f"http://127.0.0.1:{port}", Phase(name)
    try:
        key = sandbox_key(log, server)
        headers = {"Authorization": f"Bearer {key}"}
        for path, body in (("/v1/recipes", RECIPE), ("/v1/events", BODY)):  # a run to trace
            httpx.post(f"{base}{path}", json=body, headers=headers, timeout=10).raise_for_status()
        reader = None
        if watched:
            stream = "0" if args.no_stream else "1"
            argv = [base, key, str(args.seconds), str(args.reads), args.only, stream]
            reader = subprocess.Popen(
                [sys.executable, "-c", READER, *argv],
                stdout=subprocess.PIPE,
                text=True,
            )
        load = load_with_wrk if shutil.which("wrk") else load_with_python
        started, cpu = time.monotonic(), cpu_seconds(server.pid)
        report = load(f"{base}/v1/events", key, args.seconds, args.connections)
        loaded_for = time.monotonic() - started
        if reader is not None:
            result.reader = json.loads(reader.communicate(timeout=args.seconds + 60)[0])
        result.accepted, result.completed = count_runs(url)
        result.rate = result.completed / max(loaded_for, time.monotonic() - started)
        result.cpu = cpu_seconds(server.pid) - cpu
        result.non_2xx = non_2xx(report)
    finally:
        server.terminate()
        server.wait(timeout=30)
    result.locked = log.read_text(errors="replace").count("database is locked")
    return result


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def show(p: Phase) -> None:
    per_run = p.cpu / p.completed * 1000 if p.completed else float("nan")
    print(
        f"  {p.name:<10} completed runs/s {p.rate:8,.0f}   accepted {p.accepted:>7,}"
        f"   server CPU {per_run:.2f} s per 1,000 runs"
    )
    print(f"             not completed {p.accepted - p.completed}   non-2xx {p.non_2xx}", end="")
    print(f"   'database is locked' {p.locked}")
    if p.reader:
        by_path: dict[str, list[float]] = {}
        for path, ms in p.reader["latencies"]:
            by_path.setdefault("/v1/runs/{id}" if path.count("/") == 3 else path, []).append(ms)
        lat = [ms for values in by_path.values() for ms in values]
        codes = {int(c): int(n) for c, n in p.reader["codes"].items()}
        bad = sum(n for c, n in codes.items() if not 200 <= c < 300)
        print(
            f"             reader {len(lat)} reads  p50 {percentile(lat, 50):.1f} ms"
            f"  p99 {percentile(lat, 99):.1f} ms  non-2xx {bad}  codes {codes}"
            f"  stream messages {p.reader['stream']}"
        )
        for path, values in sorted(by_path.items()):
            print(
                f"               {path:<28} p50 {percentile(values, 50):6.1f} ms"
                f"  p99 {percentile(values, 99):6.1f} ms"
            )


def cost(p: Phase) -> float:
    return p.cpu / p.completed if p.completed else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--reads", type=float, default=10.0, help="dashboard reads per second")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--only", default="", help="read only paths starting so (comma-separated)")
    parser.add_argument("--no-stream", action="store_true", help="no SSE subscriber")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternate the two phases this many times; the ratio is the median of the rounds'",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sous-bench-watched-"))
    print(f"sous serve on {args.database}, {args.connections} connections, {args.seconds}s a phase")
    ratios, reads, costs = [], [], []
    for n in range(args.rounds):
        results = []
        for name, watched in (("unwatched", False), ("watched", True)):
            with database(args.database, folder) as url:
                results.append(phase(name, url, folder, args, watched))
        if args.rounds > 1:
            print(f"round {n + 1}")
        for result in results:
            show(result)
        ratios.append(results[1].rate / results[0].rate if results[0].rate else float("nan"))
        costs.append(cost(results[1]) / cost(results[0]))
        reads += [ms for _, ms in results[1].reader.get("latencies", [])]
        print(f"  watched / unwatched throughput  {ratios[-1]:.1%}   (target ≥ 90 %)")
        print(f"  watched / unwatched server CPU per run  {costs[-1]:.1%}")
    if args.rounds > 1:
        print(
            f"over {args.rounds} rounds: median ratio {statistics.median(ratios):.1%}"
            f" (each {', '.join(f'{r:.1%}' for r in ratios)}); reader p50"
            f" {percentile(reads, 50):.1f} ms p99 {percentile(reads, 99):.1f} ms"
            f" over {len(reads)} reads; median CPU per run watched / unwatched"
            f" {statistics.median(costs):.1%}"
        )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
