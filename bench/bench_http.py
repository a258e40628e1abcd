"""Over HTTP, as a peer is measured: ``sous serve`` on embedded SQLite, 16 concurrent
connections POSTing a JSON event for 30 s from a load generator on loopback (wrk when it is
installed — Debian's ``wrk`` package — else an asyncio client in another process).

The recipe has two conditions and one action that builds a message (webhook → IF → Set, the
shape n8n 2.8.4 completes ~105 executions/s at p50 155 ms / p99 240 ms on this machine).
Printed: requests accepted, completed runs/s, latency from ingest to run end (p50/p99, from the
stored timestamps), and the HTTP request latency seen by the load generator.
Target: ≥ 550 completed runs/s with p99 ≤ 50 ms, every accepted event run to completion.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from bench.common import RECIPE, percentile
from sous.sandbox import free_port

BODY = {
    "type": "custom.stock",
    "payload": {
        "product": {
            "id": 123,
            "inventory_level": 0,
            "inventory_tracking": "product",
            "name": "Cat Eye Sunglasses",
        }
    },
}
LUA = """
wrk.method = "POST"
wrk.body   = [[%s]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""


def sous(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "sous")
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, check=True)


def load_with_wrk(url: str, key: str, seconds: int, connections: int) -> str:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(LUA % (json.dumps(BODY), key))
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def load_with_python(url: str, key: str, seconds: int, connections: int) -> str:
    code = f"""
import asyncio, time, httpx, json
async def main():
    lat, codes = [], {{}}
    end = time.monotonic() + {seconds}
    async with httpx.AsyncClient(headers={{"Authorization": "Bearer {key}"}}) as c:
        async def worker():
            while time.monotonic() < end:
                t = time.perf_counter()
                r = await c.post("{url}", json={BODY!r})
                lat.append((time.perf_counter() - t) * 1000)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
        await asyncio.gather(*(worker() for _ in range({connections})))
    lat.sort()
    print("requests", len(lat), "codes", codes)
    print("p50 %.1f ms p99 %.1f ms" % (lat[len(lat) // 2], lat[int(len(lat) * 0.99)]))
asyncio.run(main())
"""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sous-bench-http-"))
    url_db = f"sqlite:///{folder / 'bench.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUS_")}
    env |= {"SOUS_DATABASE_URL": url_db, "SOUS_LOG_LEVEL": "warning"}
    key = sous("keys", "create", "--workspace", "bench", env=env).stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "sous"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        httpx.post(
            f"{base}/v1/recipes", json=RECIPE, headers=headers, timeout=10
        ).raise_for_status()
        load = load_with_wrk if shutil.which("wrk") else load_with_python
        started = time.monotonic()
        report = load(f"{base}/v1/events", key, args.seconds, args.connections)
        loaded_for = time.monotonic() - started
        engine = create_engine(url_db)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                pending = conn.execute(
                    text("select count(*) from run where finished_at is null")
                ).scalar_one()
            if pending == 0:
                break
            time.sleep(0.5)
        drained_at = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    with engine.connect() as conn:
        events = conn.execute(text("select count(*) from event")).scalar_one()
        rows = conn.execute(
            text(
                "select e.received_at, r.finished_at, r.status from run r "
                "join event e on e.id = r.event_id"
            )
        ).all()
    done = [r for r in rows if r.status == "succeeded"]
    latencies = [
        (
            datetime.fromisoformat(str(r.finished_at)) - datetime.fromisoformat(str(r.received_at))
        ).total_seconds()
        * 1000
        for r in done
    ]
    rate = len(done) / max(loaded_for, drained_at)
    print(f"sous serve over HTTP, embedded SQLite, {args.connections} connections, {args.seconds}s")
    print(report.strip())
    print(f"  events accepted     {events}")
    print(f"  runs succeeded      {len(done)}  (not completed: {events - len(done)})")
    print(f"  completed runs/s    {rate:,.0f}   (target ≥ 550)")
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"  ingest → run end    p50 {p50:.1f} ms  p99 {p99:.1f} ms   (target p99 ≤ 50 ms)")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
