"""A watched engine: the ``bench_http`` load with and without a dashboard reading, in one run.

``sous serve`` on a fresh database takes 16 connections POSTing events without pause. The load
is cut into windows (``--window`` seconds) that take turns: in a *watched* window a second process
reads, ten times a second, what a merchant's dashboard shows — the runs list, the events list, one
run's trace and the backlog report, in turn — while an SSE subscriber follows ``/v1/stream``; in
an *unwatched* one nothing reads. The windows go unwatched, watched, watched, unwatched
(``--cycles`` times), after a first window that warms the server up and is not counted, so both
kinds share the same server, the same growing database and whatever else the machine does at
the time: a burst of other work, or a slower minute, lands on both alike rather than on one
phase. Completed runs per window come from the runs' stored finishing times; the server's CPU
time is read at every window's edge.

Printed for each round: completed runs/s in each kind of window and their ratio, the server's
CPU time per 1,000 completed runs in each (its watched / unwatched ratio is what the reads cost
the engine), the reader's p50/p99 per path and the stream messages it received, non-2xx answers
(load and reader), "database is locked" lines in the server's log, and accepted events whose run
did not complete. ``--rounds N`` repeats it with a new server and database and reports the
median ratio.

Targets: watched throughput ≥ 90 % of unwatched, reader p99 ≤ 100 ms, 0 lock errors, 0 non-2xx,
every accepted event run to completion. ``--database postgresql`` runs it on a fresh PostgreSQL
database (``SOUS_BENCH_POSTGRES``, default the local server) instead of embedded SQLite.
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
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from bench.bench_http import BODY, load_with_python, load_with_wrk
from bench.common import RECIPE, percentile
from sous.sandbox import free_port

SERVER = os.environ.get("SOUS_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STORE = "sousdemo"  # the sandbox's simulated store
WATCHED, UNWATCHED = "1", "0"
CYCLE = UNWATCHED + WATCHED + WATCHED + UNWATCHED
"""Each kind of window comes as often early as late in a cycle: a steady drift (the database
growing, say) weighs on both alike."""

READER = r"""
import json, resource, sys, threading, time, httpx
base, key, start, window, pattern, rate = sys.argv[1:7]
start, window, rate = float(start), float(window), float(rate)
only, stream = sys.argv[7].split(",") if sys.argv[7] else [], sys.argv[8] == "1"
headers = {"Authorization": f"Bearer {key}"}
messages, lat, codes = [0], [], {}

def follow(seconds):
    try:
        with httpx.stream("GET", f"{base}/v1/stream", params={"max_seconds": seconds},
                          headers=headers, timeout=seconds + 10) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    messages[0] += 1
    except httpx.HTTPError:
        pass

with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
    runs = c.get("/v1/runs?limit=1").json().get("data", [])
    run_path = f"/v1/runs/{runs[0]['id']}" if runs else "/v1/runs?limit=1"
    paths = ["/v1/runs?limit=50", "/v1/events?limit=50", run_path, "/v1/stores/%s/backlog"]
    paths = [p for p in paths if not only or any(p.startswith(o) for o in only)] or paths
    n = 0
    for i, kind in enumerate(pattern):
        begin, end = start + i * window, start + (i + 1) * window
        if kind != "1":
            continue
        time.sleep(max(0.0, begin - time.time()))
        sse = threading.Thread(target=follow, args=(end - time.time(),), daemon=True)
        if stream:
            sse.start()
        while time.time() < end:
            t0 = time.perf_counter()
            path = paths[n % len(paths)]
            r = c.get(path)
            lat.append((path.split("?")[0], (time.perf_counter() - t0) * 1000))
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            n += 1
            time.sleep(max(0.0, min(1 / rate - (time.perf_counter() - t0), end - time.time())))
        if stream:
            sse.join(timeout=10)
used = resource.getrusage(resource.RUSAGE_SELF)
cpu = used.ru_utime + used.ru_stime
print(json.dumps({"latencies": lat, "codes": codes, "stream": messages[0], "cpu": cpu}))
""".replace("%s", STORE)


@dataclass
class Kind:
    """The windows of one kind (watched or unwatched) of a round, added up."""

    seconds: float = 0.0
    accepted: int = 0
    completed: int = 0
    cpu: float = 0.0
    rates: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else float("nan")

    @property
    def cost(self) -> float:
        """Server CPU seconds per 1,000 completed runs."""
        return self.cpu / self.completed * 1000 if self.completed else float("nan")


@dataclass
class Round:
    accepted: int = 0
    completed: int = 0
    non_2xx: int = 0
    locked: int = 0
    kinds: dict[str, Kind] = field(default_factory=lambda: {UNWATCHED: Kind(), WATCHED: Kind()})
    reader: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        unwatched = self.kinds[UNWATCHED].rate
        return self.kinds[WATCHED].rate / unwatched if unwatched else float("nan")

    @property
    def cost_ratio(self) -> float:
        return self.kinds[WATCHED].cost / self.kinds[UNWATCHED].cost


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


OURS = "from run r join event e on e.id = r.event_id where e.type = 'custom.stock'"


def finished_runs(url: str) -> tuple[list[float], list[float]]:
    """(when the load's events were stored, when their runs succeeded), waiting up to 120 s
    for every run to end. The load's last requests may still be storing their events when it
    stops: done once no run is going and no event came since the last look."""
    engine = create_engine(url)
    events = "select count(*) from event where type = 'custom.stock'"
    try:
        deadline, stored = time.monotonic() + 120, -1
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                before, stored = stored, conn.execute(text(events)).scalar_one()
                going = conn.execute(text(f"select count(*) {OURS} and r.finished_at is null"))
                if going.scalar_one() == 0 and stored == before:
                    break
                conn.rollback()
                time.sleep(0.5)
            rows = conn.execute(text(f"select r.finished_at {OURS} and r.status = 'succeeded'"))
            finished = [_epoch(value) for (value,) in rows]
            rows = conn.execute(text("select received_at from event where type = 'custom.stock'"))
            return [_epoch(value) for (value,) in rows], finished
    finally:
        engine.dispose()


def _epoch(value: datetime | str) -> float:
    """A stored time as a Unix time (SQLite gives naive UTC, possibly as text)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sample_cpu(pid: int, edges: list[float], into: list[float]) -> threading.Thread:
    """A thread that reads the server's CPU time at each of ``edges`` (Unix times)."""

    def run() -> None:
        for edge in edges:
            time.sleep(max(0.0, edge - time.time()))
            into.append(cpu_seconds(pid))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def one_round(url: str, folder: Path, args: argparse.Namespace) -> Round:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUS_")}
    env |= {"SOUS_DATABASE_URL": url, "SOUS_LOG_LEVEL": "warning", "NO_COLOR": "1"}
    port, log = free_port(), folder / f"{uuid.uuid4().hex[:6]}.log"
    with log.open("w") as out:
        # the sandbox connects a simulated store, so the backlog report has one to read
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "sous"), "serve", "--sandbox", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base, result = f"http://127.0.0.1:{port}", Round()
    pattern = CYCLE * args.cycles
    try:
        key = sandbox_key(log, server)
        headers = {"Authorization": f"Bearer {key}"}
        for path, body in (("/v1/recipes", RECIPE), ("/v1/events", BODY)):  # a run to trace
            httpx.post(f"{base}{path}", json=body, headers=headers, timeout=10).raise_for_status()
        load_from = time.time() + 3  # time for the reader to start
        first = load_from + args.window  # the first window warms up
        edges = [first + i * args.window for i in range(len(pattern) + 1)]
        stream = "0" if args.no_stream else "1"
        argv = [base, key, str(first), str(args.window), pattern, str(args.reads), args.only]
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, *argv, stream], stdout=subprocess.PIPE, text=True
        )
        cpu: list[float] = []
        sampler = sample_cpu(server.pid, edges, cpu)
        time.sleep(max(0.0, load_from - time.time()))
        load = load_with_wrk if shutil.which("wrk") else load_with_python
        report = load(f"{base}/v1/events", key, args.window * (len(pattern) + 1), args.connections)
        result.reader = json.loads(reader.communicate(timeout=60)[0])
        sampler.join(timeout=10)
        result.non_2xx = non_2xx(report)
        received, times = finished_runs(url)
        result.accepted, result.completed = len(received), len(times)
    finally:
        server.terminate()
        server.wait(timeout=30)
    for i, watched in enumerate(pattern):
        begin, end = edges[i], edges[i + 1]
        done = sum(1 for t in times if begin <= t < end)
        kind = result.kinds[watched]
        kind.accepted += sum(1 for t in received if begin <= t < end)
        kind.seconds += end - begin
        kind.completed += done
        kind.cpu += cpu[i + 1] - cpu[i]
        kind.rates.append(done / (end - begin))
    result.locked = log.read_text(errors="replace").count("database is locked")
    return result


def show(r: Round) -> None:
    print(
        f"  accepted {r.accepted:,}   not completed {r.accepted - r.completed}"
        f"   non-2xx {r.non_2xx}   'database is locked' {r.locked}"
    )
    for name, watched in (("unwatched", UNWATCHED), ("watched", WATCHED)):
        kind = r.kinds[watched]
        each = " ".join(f"{rate:.0f}" for rate in kind.rates)
        print(
            f"  {name:<10} completed runs/s {kind.rate:6,.0f}"
            f"   accepted events/s {kind.accepted / kind.seconds:6,.0f}"
            f"   server CPU {kind.cost:.2f} s per 1,000 runs   (windows: {each})"
        )
    by_path: dict[str, list[float]] = {}
    for path, ms in r.reader["latencies"]:
        by_path.setdefault("/v1/runs/{id}" if path.count("/") == 3 else path, []).append(ms)
    lat = [ms for values in by_path.values() for ms in values]
    codes = {int(c): int(n) for c, n in r.reader["codes"].items()}
    bad = sum(n for c, n in codes.items() if not 200 <= c < 300)
    print(
        f"  reader {len(lat)} reads  p50 {percentile(lat, 50):.1f} ms"
        f"  p99 {percentile(lat, 99):.1f} ms  non-2xx {bad}  codes {codes}"
        f"  stream messages {r.reader['stream']}  its CPU {r.reader['cpu']:.1f} s"
    )
    for path, values in sorted(by_path.items()):
        print(
            f"    {path:<28} p50 {percentile(values, 50):6.1f} ms"
            f"  p99 {percentile(values, 99):6.1f} ms"
        )
    print(f"  watched / unwatched throughput  {r.ratio:.1%}   (target ≥ 90 %)")
    print(f"  watched / unwatched server CPU per run  {r.cost_ratio:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=5, help="seconds per window")
    parser.add_argument(
        "--cycles", type=int, default=3, help="unwatched-watched-watched-unwatched cycles"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--reads", type=float, default=10.0, help="dashboard reads per second")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--only", default="", help="read only paths starting so (comma-separated)")
    parser.add_argument("--no-stream", action="store_true", help="no SSE subscriber")
    parser.add_argument(
        "--rounds", type=int, default=1, help="this many rounds; the ratio is their median"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sous-bench-watched-"))
    windows = len(CYCLE) * args.cycles
    print(
        f"sous serve on {args.database}, {args.connections} connections; {windows} windows of"
        f" {args.window} s, half of them watched, after {args.window} s of warm-up"
    )
    rounds: list[Round] = []
    for n in range(args.rounds):
        with database(args.database, folder) as url:
            rounds.append(one_round(url, folder, args))
        if args.rounds > 1:
            print(f"round {n + 1}")
        show(rounds[-1])
    if args.rounds > 1:
        reads = [ms for r in rounds for _, ms in r.reader["latencies"]]
        ratios = [r.ratio for r in rounds]
        print(
            f"over {args.rounds} rounds: median ratio {statistics.median(ratios):.1%}"
            f" (each {', '.join(f'{x:.1%}' for x in ratios)}); reader p50"
            f" {percentile(reads, 50):.1f} ms p99 {percentile(reads, 99):.1f} ms"
            f" over {len(reads)} reads; median CPU per run watched / unwatched"
            f" {statistics.median(r.cost_ratio for r in rounds):.1%}"
        )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
