"""End to end in one process: events → inbox → dispatch → queue → run, on embedded SQLite.

One recipe with two conditions and one cheap action (``core.set`` building a message). The
producers send through :meth:`Engine.receive`, as the HTTP API does (stored, then held while the
workers are behind); ``--no-backpressure`` uses :meth:`Engine.ingest`, which lets a queue build
up. Prints completed runs/s and the latency from ingest to run end. Target: ≥ 1,000 runs/s.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
from typing import Any

from bench.common import RECIPE, summary, temp_engine
from engine.model.events import NewEvent
from sous.serve import freeze_heap


async def run(events: int, concurrency: int, backpressure: bool = True) -> None:
    engine, folder = temp_engine()
    engine.refresh(engine.recipes.create("default", RECIPE))
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    done = asyncio.Event()

    def on_change(kind: str, data: dict[str, Any]) -> None:
        if kind == "run" and data["status"] in ("succeeded", "failed"):
            ended[data["id"]] = time.perf_counter()
            if len(ended) == events:
                done.set()

    engine.subscribe(on_change)
    await engine.start()
    freeze_heap()  # as sous serve does once started
    payload = {
        "product": {
            "id": 1,
            "name": "Cat Eye Sunglasses",
            "inventory_level": 0,
            "inventory_tracking": "product",
        }
    }
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            t0 = time.perf_counter()
            new = NewEvent(type="custom.stock", payload=payload, dedup_key=f"e{i}")
            result = await (engine.receive(new) if backpressure else engine.ingest(new))
            for run_id in result.runs:
                started[run_id] = t0

    t_start = time.perf_counter()
    cpu_start = time.process_time()
    await asyncio.gather(*(one(i) for i in range(events)))
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - t_start
    cpu = time.process_time() - cpu_start
    latencies = [(ended[r] - started[r]) * 1000 for r in started]
    await engine.stop()
    engine.db.dispose()
    shutil.rmtree(folder, ignore_errors=True)
    rate = events / elapsed
    how = "Engine.receive, with backpressure" if backpressure else "Engine.ingest"
    print(
        f"in-process pipeline, embedded SQLite: {events} events, {concurrency} concurrent producers"
        f" ({how})"
    )
    verdict = "met" if rate >= 1000 else "NOT met"
    print(f"  completed runs/s  {rate:,.0f}   (target ≥ 1,000: {verdict})")
    print(f"  ingest → run end  {summary(latencies)}")
    per_run = cpu / events * 1e6
    print(f"  CPU per run       {per_run:,.0f} µs  ({events / cpu:,.0f} runs/CPU-second;")
    print("                    runs/s is lower by the time this process waited for a CPU)")
    print(f"  commits           {engine.db.writer.commits} for {engine.db.writer.writes} writes")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--no-backpressure",
        action="store_true",
        help="producers use Engine.ingest, which never waits for the workers",
    )
    args = parser.parse_args()
    asyncio.run(run(args.events, args.concurrency, not args.no_backpressure))


if __name__ == "__main__":
    main()
