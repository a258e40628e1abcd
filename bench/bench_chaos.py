"""Chaos: kill Sous with SIGKILL at random moments during a burst and check that nothing is
lost and nothing is done twice.

The store simulator runs in its own process (it must outlive Sous, as a real store does) with a
fast webhook retry schedule. ``sous serve --sandbox`` runs as a subprocess against it
(``SOUS_SANDBOX_SIMULATOR_URL``) on a database file that survives the kills
(``SOUS_DATABASE_URL``). A recipe marks every stock change of the ``Chaos …`` products with a
custom field (``bigcommerce.product.update``, which reads the product before writing).

The burst changes each product's stock once through the simulator's control API, which fires
``store/product/inventory/updated`` webhooks at Sous. Meanwhile Sous is killed ``--kills``
times at random moments and restarted. Webhooks Sous did not acknowledge are retried by the
simulator. At the end every product must carry its new level, with exactly one run of the
recipe and exactly one committed write (``PUT /v3/catalog/products/{id}`` in the simulator's
request log).

Printed: kills, events (stock changes sent), runs completed, lost (a change without its run or
its write), duplicated (a product written twice, or an event run twice), and the time it took.
Exit status 1 if anything was lost or duplicated.

The BigCommerce connector's normalisation job stores the events it derives, the snapshots it
derived them from and its own completion in one transaction, so a job run again after a kill
derives nothing new: one stock change is one event. A change normalised into two events counts
as duplicated too.

    python -m bench.bench_chaos [--products 40] [--kills 4] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sous.sandbox import free_port

STORE = "sousdemo"
TOKEN = "sim-demo-token"
WORKSPACE = "sandbox"
ROOT = str(Path(__file__).resolve().parent.parent)
RECIPE: dict[str, Any] = {
    "id": "chaos-mark",
    "name": "Chaos: mark each stock change on the product",
    "store": STORE,
    "trigger": {"type": "bigcommerce.product.inventory_changed"},
    "conditions": [{"in": ["Chaos", {"var": "product.name"}]}],
    "actions": [
        {
            "id": "mark",
            "use": "bigcommerce.product.update",
            "with": {
                "product_id": "{{ product.id }}",
                "custom_fields": {"chaos-level": "level {{ current }}"},
            },
        }
    ],
}


@dataclass
class ChaosReport:
    kills: int = 0
    events: int = 0
    runs_completed: int = 0
    lost: list[int] = field(default_factory=list)
    duplicated: list[int] = field(default_factory=list)
    """Products written more than once, or whose one change became two events or two runs."""
    writes: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"kills             {self.kills}",
            f"events            {self.events}  (stock changes sent through the simulator)",
            f"runs completed    {self.runs_completed}",
            f"writes            {self.writes}  (committed product writes in the simulator's log)",
            f"lost              {len(self.lost)}  {self.lost or ''}".rstrip(),
            f"duplicated        {len(self.duplicated)}  {self.duplicated or ''}".rstrip(),
            f"time              {self.seconds:.1f} s",
            *self.notes,
        ]


async def _wait_http(
    url: str, deadline: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} did not answer in time")


class Process:
    """A subprocess with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], folder: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log = folder / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.args,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.proc

    async def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(self.proc.wait)

    async def stop(self, grace: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(self.proc.wait, grace)
        await self.kill()


def _prepare_database(url: str) -> None:
    """Migrate the database and store the chaos recipe in the sandbox workspace."""
    from engine.clock import SystemClock
    from engine.store.db import Database
    from engine.store.recipes import SqlRecipeStore
    from sous.container import build_registry
    from sous.migrate import upgrade

    db = Database(url)
    try:
        upgrade(db.engine)
        SqlRecipeStore(db, build_registry(), SystemClock()).create(
            WORKSPACE, RECIPE, source="chaos"
        )
    finally:
        db.dispose()


def _read_database(
    url: str, product_ids: set[int]
) -> tuple[Counter[int], Counter[int], Counter[str]]:
    """Per product: inventory_changed events and runs of the chaos recipe; runs by status."""
    from sqlalchemy import select

    from engine.store.db import Database
    from engine.store.models import EventRow, RecipeRow, RunRow

    events_t = EventRow.__table__  # type: ignore[attr-defined]
    recipes_t = RecipeRow.__table__  # type: ignore[attr-defined]
    runs_t = RunRow.__table__  # type: ignore[attr-defined]
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            uid = conn.execute(
                select(recipes_t.c.uid).where(recipes_t.c.slug == RECIPE["id"])
            ).scalar_one()
            rows = conn.execute(
                select(events_t.c.id, events_t.c.payload).where(
                    events_t.c.type == "bigcommerce.product.inventory_changed"
                )
            ).all()
            found = conn.execute(
                select(runs_t.c.event_id, runs_t.c.status).where(runs_t.c.recipe_uid == uid)
            ).all()
    finally:
        db.dispose()
    by_event = {eid: int(payload["product"]["id"]) for eid, payload in rows}
    events = Counter(p for p in by_event.values() if p in product_ids)
    runs: Counter[int] = Counter()
    statuses: Counter[str] = Counter()
    for event_id, status in found:
        statuses[status] += 1
        if event_id in by_event:
            runs[by_event[event_id]] += 1
    return events, runs, statuses


async def run_chaos(
    products: int = 40,
    kills: int = 4,
    seed: int | None = None,
    burst_seconds: float = 6.0,
    deadline: float = 100.0,
    folder: Path | None = None,
) -> ChaosReport:
    rng = random.Random(seed)
    started = time.monotonic()
    limit = started + deadline
    work = folder or Path(tempfile.mkdtemp(prefix="sous-chaos-"))
    url = f"sqlite:///{work / 'chaos.db'}"
    sim_port, sous_port = free_port(), free_port()
    sim_url, sous_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{sous_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUS_")}
    env |= {
        "SOUS_DATABASE_URL": url,
        "SOUS_SANDBOX_SIMULATOR_URL": sim_url,
        "PYTHONUNBUFFERED": "1",
    }
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    simulator = Process(
        "simulator",
        [
            sys.executable,
            "-m",
            "connectors.bigcommerce.simulator",
            "--port",
            str(sim_port),
            "--quota",
            "1000000",
            "--webhook-time-scale",
            "0.005",
        ],
        env,
        work,
    )
    sous = Process(
        "sous",
        [
            sys.executable,
            "-m",
            "sous.cli",
            "serve",
            "--sandbox",
            "--port",
            str(sous_port),
            "--workers",
            "8",
        ],
        env,
        work,
    )
    report = ChaosReport()
    await asyncio.to_thread(_prepare_database, url)
    try:
        proc = simulator.start()
        await _wait_http(f"{sim_url}/_sim", limit, proc)
        store_api = httpx.AsyncClient(
            base_url=f"{sim_url}/stores/{STORE}", headers={"X-Auth-Token": TOKEN}, timeout=10
        )
        control = httpx.AsyncClient(base_url=f"{sim_url}/_sim/stores/{STORE}", timeout=10)
        async with store_api, control:
            ids = await _create_products(store_api, products)
            proc = sous.start()
            await _wait_http(f"{sous_url}/healthz", limit, proc)
            await _wait_hooks(store_api, limit)
            levels = {pid: 100 + n for n, pid in enumerate(ids)}
            order = list(ids)
            rng.shuffle(order)
            report.events = len(order)

            async def burst() -> None:
                for pid in order:
                    await control.put("/stock", json={"product_id": pid, "level": levels[pid]})
                    await asyncio.sleep(rng.uniform(0, 2 * burst_seconds / len(order)))

            async def chaos() -> None:
                for _ in range(kills):
                    await asyncio.sleep(rng.uniform(0.3, 2 * burst_seconds / kills))
                    await sous.kill()
                    report.kills += 1
                    await asyncio.sleep(rng.uniform(0, 0.5))
                    await _wait_http(f"{sous_url}/healthz", limit, sous.start())

            ready = time.monotonic() - started
            await asyncio.gather(burst(), chaos())
            burst_end = time.monotonic() - started
            done = await _converge(store_api, levels, limit)
            report.notes.append(
                f"phases            ready {ready:.1f} s, burst and kills until {burst_end:.1f} s, "
                f"converged at {time.monotonic() - started:.1f} s"
            )
            if not done:
                report.notes.append(f"not converged before the deadline ({deadline:g} s)")
            await asyncio.sleep(1.0)  # room for a late duplicate to show
            await sous.stop()
            writes = (
                await control.get(
                    "/requests", params={"method": "PUT", "path_prefix": "/v3/catalog/products/"}
                )
            ).json()
        committed: Counter[int] = Counter()
        for entry in writes if isinstance(writes, list) else writes.get("data", []):
            parts = entry["path"].strip("/").split("/")
            if len(parts) == 4 and entry.get("committed") and int(parts[3]) in levels:
                committed[int(parts[3])] += 1
        events, runs, statuses = await asyncio.to_thread(_read_database, url, set(levels))
        report.writes = sum(committed.values())
        report.runs_completed = statuses.get("succeeded", 0)
        for pid in levels:
            if committed[pid] == 0 or runs[pid] == 0 or events[pid] == 0:
                report.lost.append(pid)
            elif committed[pid] > 1 or runs[pid] > 1 or events[pid] > 1:
                report.duplicated.append(pid)
        other = {s: n for s, n in statuses.items() if s != "succeeded"}
        if other:
            report.notes.append(f"runs not succeeded: {other}")
    finally:
        await sous.kill()
        await simulator.stop()
        report.seconds = time.monotonic() - started
        if folder is None and not report.lost and not report.duplicated:
            shutil.rmtree(work, ignore_errors=True)
        elif folder is None:
            report.notes.append(f"logs and database kept in {work}")
    return report


async def _create_products(store_api: httpx.AsyncClient, count: int) -> list[int]:
    ids = []
    for n in range(count):
        body = {
            "name": f"Chaos {n}",
            "type": "physical",
            "weight": 1,
            "price": 10,
            "inventory_tracking": "product",
            "inventory_level": 500,
        }
        made = await store_api.post("/v3/catalog/products", json=body)
        made.raise_for_status()
        ids.append(int(made.json()["data"]["id"]))
    return ids


async def _wait_hooks(store_api: httpx.AsyncClient, deadline: float) -> None:
    """Until Sous has registered its webhooks with the store (and taken its stock baseline)."""
    while time.monotonic() < deadline:
        hooks = (await store_api.get("/v3/hooks")).json().get("data") or []
        if any(
            h.get("scope") == "store/product/inventory/updated" and h.get("is_active")
            for h in hooks
        ):
            await asyncio.sleep(1.0)  # the baseline follows the registration
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("Sous did not register its webhooks")


async def _converge(store_api: httpx.AsyncClient, levels: dict[int, int], deadline: float) -> bool:
    wanted = {pid: f"level {level}" for pid, level in levels.items()}
    ids = ",".join(str(p) for p in levels)
    while time.monotonic() < deadline:
        answer = await store_api.get(
            "/v3/catalog/products", params={"id:in": ids, "include": "custom_fields", "limit": 250}
        )
        seen = {
            int(p["id"]): next(
                (f["value"] for f in p.get("custom_fields") or [] if f["name"] == "chaos-level"),
                None,
            )
            for p in answer.json()["data"]
        }
        if all(seen.get(pid) == value for pid, value in wanted.items()):
            return True
        await asyncio.sleep(0.25)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--products", type=int, default=40)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    report = asyncio.run(run_chaos(args.products, args.kills, args.seed))
    burst = f"a burst of {args.products} stock changes"
    print(f"chaos: sous serve --sandbox killed with SIGKILL during {burst}")
    for line in report.lines():
        print(f"  {line}")
    raise SystemExit(1 if report.lost or report.duplicated else 0)


if __name__ == "__main__":
    main()
