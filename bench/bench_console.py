"""Console pages over a big workspace: how long each page takes to render, in process.

Fills a database in bulk with one workspace's history: 1,000 recipes, 100,000 events each with
a run and its dispatch decision (spread over 30 days, newest now; about 2 % held by flood
protection, 5 % failed), a two-step trace on one run in five, a connected store, and a
backorder ledger (300 products, 20,000 order lines) for the demand chart. Then the whole app
(:func:`api.app.create_app` with the engine started and the start-up heap frozen, as ``sous serve``
runs it) answers each
console page ``--rounds`` times over ``httpx.ASGITransport`` for a signed-in visitor, one
request at a time; printed per page: p50 and p99 in milliseconds against the target
p99 ≤ 50 ms. A page the console does not have yet is reported ``missing``, not failed; any
GET page without parameters that is not in the list below is measured too.

    python -m bench.bench_console [--rounds N] [--runs N] [--recipes N] [--database postgresql]

``--database postgresql`` seeds a fresh database on ``SOUS_BENCH_POSTGRES`` (default the local
server) instead of a SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.bench_watched import database
from bench.common import percentile

TARGET_MS = 50.0
WORKSPACE = "bench"
STORE = "benchstore"
DAYS = 30
TRIGGERS = (
    "bigcommerce.product.out_of_stock",
    "bigcommerce.product.low_stock",
    "bigcommerce.order.created",
    "custom.stock",
)
STATUSES = (
    ("succeeded", 85),
    ("failed", 5),
    ("succeeded_with_errors", 3),
    ("skipped", 2),
    ("held", 2),
    ("cancelled", 2),
    ("discarded", 1),
)


@dataclass
class Seeded:
    """What the pages are asked about: a recipe, a run with steps, an event, a held run."""

    recipe: str
    run: str
    event: str
    held: str
    rows: dict[str, int]


def time_id(prefix: str, when: datetime, rng: random.Random) -> str:
    """An id of :func:`engine.new_id`'s form made at ``when``: lists by id are lists by time."""
    ms = int(when.timestamp() * 1000)
    raw = ms.to_bytes(6, "big") + rng.getrandbits(79).to_bytes(10, "big")
    return f"{prefix}_{base64.b32hexencode(raw)[:26].decode().lower()}"


def recipe_document(n: int) -> dict[str, Any]:
    from engine import Recipe

    trigger = TRIGGERS[n % len(TRIGGERS)]
    document = {
        "id": f"recipe-{n:04d}",
        "name": f"Recipe {n:04d}: stock rule {n % 37}",
        "description": "A recipe of the console benchmark.",
        "store": STORE,
        "trigger": {"type": trigger},
        "conditions": [{"<=": [{"var": "product.inventory_level"}, n % 5]}],
        "actions": [
            {"id": "note", "use": "core.set", "with": {"text": "{{ product.name }} is low"}},
            {"id": "log", "use": "core.log", "with": {"message": "{{ steps.note.text }}"}},
        ],
    }
    if n % 10 == 0:
        document["flood"] = {"max_runs": 50, "per": "1m"}
    return Recipe.model_validate(document).document()


def _status(rng: random.Random) -> str:
    pick = rng.randrange(100)
    for status, share in STATUSES:
        if pick < share:
            return status
        pick -= share
    return "succeeded"


def _insert(db: Any, table: Any, rows: list[dict[str, Any]], batch: int = 10_000) -> None:
    for i in range(0, len(rows), batch):
        part = rows[i : i + batch]
        db.run_sync(lambda tx, part=part: tx.insert(table, part))


def seed(db: Any, cipher: Any, recipes: int, runs: int) -> Seeded:
    """The workspace's history, in bulk (a few statements per table)."""
    from engine import EventRow, RecipeRow, RunRow, StepRow
    from engine.store.models import MatchRow, RecipeVersionRow, StoreRow, Workspace

    rng = random.Random(11)
    now = datetime.now(UTC)
    start = now - timedelta(days=DAYS)
    workspace = [{"id": WORKSPACE, "name": "Benchmark", "created_at": start}]
    _insert(db, table_of(Workspace), workspace)
    _insert(db, table_of(StoreRow), [store_row(cipher, start)])
    recipe_rows, versions, uids = [], [], []
    for n in range(recipes):
        uid = time_id("rcp", start + timedelta(seconds=n), rng)
        document = recipe_document(n)
        uids.append((uid, document["id"]))
        recipe_rows.append(
            {
                "uid": uid,
                "workspace_id": WORKSPACE,
                "slug": document["id"],
                "version": 1,
                "enabled": n % 50 != 0,
                "document": document,
                "source": "api",
                "disabled_reason": None if n % 50 else "switched off by the benchmark",
                "created_at": start,
                "updated_at": start,
            }
        )
        versions.append(
            {"recipe_uid": uid, "version": 1, "document": document, "created_at": start}
        )
    _insert(db, table_of(RecipeRow), recipe_rows)
    _insert(db, table_of(RecipeVersionRow), versions)
    events: list[dict[str, Any]] = []
    run_rows: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    matches: list[dict[str, Any]] = []
    span = (now - start).total_seconds()
    weights = [1 / (1 + i) for i in range(len(uids))]  # a few recipes run most
    chosen = rng.choices(range(len(uids)), weights=weights, k=runs)
    for n in range(runs):
        at = start + timedelta(seconds=span * (n + 1) / runs)
        uid, slug = uids[chosen[n]]
        event_id, run_id = time_id("evt", at, rng), time_id("run", at, rng)
        product = rng.randrange(5_000)
        payload = {"product": {"id": product, "name": f"Product {product}", "inventory_level": 0}}
        events.append(
            {
                "id": event_id,
                "workspace_id": WORKSPACE,
                "store": STORE,
                "type": TRIGGERS[chosen[n] % len(TRIGGERS)],
                "payload": payload,
                "source": "webhook",
                "dedup_key": event_id,
                "occurred_at": at,
                "received_at": at,
                "caused_by": None,
                "target_recipe": None,
                "dispatched": True,
            }
        )
        status = _status(rng)
        held = status == "held"
        run_rows.append(
            {
                "id": run_id,
                "workspace_id": WORKSPACE,
                "recipe_uid": uid,
                "recipe_version": 1,
                "event_id": event_id,
                "store": STORE,
                "status": status,
                "status_reason": "flood: more than 50 runs in 1m; release or discard it"
                if held
                else ("step log failed: upstream 503" if status == "failed" else None),
                "concurrency_key": None,
                "next_step": 0 if held else 2,
                "depth": 0,
                "created_at": at,
                "started_at": None if held else at,
                "finished_at": None if held else at + timedelta(milliseconds=40),
                "due_at": None,
                "context": None,
            }
        )
        matches.append(
            {
                "event_id": event_id,
                "recipe_uid": uid,
                "workspace_id": WORKSPACE,
                "recipe_version": 1,
                "matched": True,
                "stage": "flood" if held else "matched",
                "reason": {"message": "flood"} if held else None,
                "run_id": run_id,
            }
        )
        if not held and n % 5 == 0:
            steps += step_rows(run_id, at, failed=status == "failed")
    _insert(db, table_of(EventRow), events)
    _insert(db, table_of(RunRow), run_rows)
    _insert(db, table_of(MatchRow), matches)
    _insert(db, table_of(StepRow), steps)
    lines = seed_backorders(db, rng, start, now)
    with_steps = {s["run_id"] for s in steps}
    traced = next(r for r in reversed(run_rows) if r["id"] in with_steps)
    held_run = next(r for r in reversed(run_rows) if r["status"] == "held")
    counts = {
        "recipes": len(recipe_rows),
        "events": len(events),
        "runs": len(run_rows),
        "held runs": sum(1 for r in run_rows if r["status"] == "held"),
        "steps": len(steps),
        "backorder lines": lines,
    }
    slug = next(s for u, s in uids if u == traced["recipe_uid"])
    return Seeded(slug, traced["id"], traced["event_id"], held_run["id"], counts)


def step_rows(run_id: str, at: datetime, *, failed: bool) -> list[dict[str, Any]]:
    common = {"run_id": run_id, "attempts": 1, "started_at": at, "output_sealed": None}
    return [
        common
        | {
            "index": 0,
            "step_id": "note",
            "use": "core.set",
            "status": "succeeded",
            "input": {"text": "Product is low"},
            "output": {"text": "Product is low"},
            "error": None,
            "finished_at": at + timedelta(milliseconds=3),
            "duration_ms": 3.0,
        },
        common
        | {
            "index": 1,
            "step_id": "log",
            "use": "core.log",
            "status": "failed" if failed else "succeeded",
            "input": {"message": "Product is low"},
            "output": None if failed else {"logged": True},
            "error": "upstream 503" if failed else None,
            "finished_at": at + timedelta(milliseconds=9),
            "duration_ms": 6.0,
        },
    ]


def store_row(cipher: Any, at: datetime) -> dict[str, Any]:
    return {
        "id": "sto_bench",
        "workspace_id": WORKSPACE,
        "store_hash": STORE,
        "name": "Benchmark store",
        "api_base_url": f"http://127.0.0.1:9/stores/{STORE}",
        "access_token_enc": cipher.encrypt("bench-token"),
        "webhook_secret_enc": cipher.encrypt("bench-secret"),
        "status": "active",
        "created_at": at,
        "last_event_at": at,
        "info": None,
    }


def seed_backorders(db: Any, rng: random.Random, start: datetime, now: datetime) -> int:
    """300 products on backorder (most active) and 20,000 order lines over the 30 days."""
    try:
        from connectors.backorder.models import BackorderAssignmentRow, BackorderLineRow
    except ImportError:
        return 0
    assignments, lines = [], []
    for n in range(300):
        status = "active" if n % 10 else ("closed" if n % 20 else "ended")
        assignments.append(
            {
                "id": time_id("bo", start + timedelta(minutes=n), rng),
                "workspace_id": WORKSPACE,
                "store": STORE,
                "product_id": 1000 + n,
                "variant_id": None,
                "product_name": f"Product {1000 + n}",
                "sku": f"SKU-{1000 + n}",
                "status": status,
                "backorder_limit": 200,
                "message": "Ships in two weeks",
                "back_in_stock_date": None,
                "incoming_quantity": 100 if n % 3 == 0 else None,
                "lead_time_days": 14,
                "eta": date.today() + timedelta(days=n % 20),
                "eta_source": "lead_time",
                "release_on_cancel": True,
                "reserve_on_restock": True,
                "units": 0,
                "closures": 0,
                "version": 1,
                "created_key": f"bench-{n}",
                "created_at": start,
                "updated_at": start,
                "active_since": start,
            }
        )
    span = (now - start).total_seconds()
    for n in range(20_000):
        target = assignments[rng.randrange(len(assignments))]
        at = start + timedelta(seconds=span * (n + 1) / 20_000)
        quantity = rng.randint(1, 4)
        lines.append(
            {
                "assignment_id": target["id"],
                "order_id": 100_000 + n,
                "variant_id": 0,
                "workspace_id": WORKSPACE,
                "store": STORE,
                "product_id": target["product_id"],
                "quantity": quantity,
                "backordered": quantity,
                "released": 0,
                "over_limit": 0,
                "covered": True,
                "status": rng.choice(("waiting", "waiting", "waiting", "allocated", "shipped")),
                "ordered_at": at,
                "updated_at": at,
                "customer_email": f"shopper{n % 3000}@example.com",
                "customer_name": f"Shopper {n % 3000}",
            }
        )
    _insert(db, table_of(BackorderAssignmentRow), assignments)
    _insert(db, table_of(BackorderLineRow), lines)
    return len(lines)


def table_of(model: Any) -> Any:
    return model.__table__


def pages(seeded: Seeded) -> list[tuple[str, str]]:
    """(label, URL) of each page measured: the sections, a detail page of each kind, filters."""
    return [
        ("home", "/console/"),
        ("settings", "/console/settings"),
        ("templates", "/console/templates"),
        ("recipes", "/console/recipes"),
        ("recipe", f"/console/recipes/{seeded.recipe}"),
        ("runs", "/console/runs"),
        ("runs: held", "/console/runs?status=held"),
        ("runs: one recipe", f"/console/runs?recipe={seeded.recipe}"),
        ("run trace", f"/console/runs/{seeded.run}"),
        ("held run", f"/console/runs/{seeded.held}"),
        ("events", "/console/events"),
        ("event", f"/console/events/{seeded.event}"),
        ("backtest", "/console/backtest"),
        ("backorders", "/console/backorders"),
        ("packs", "/console/packs"),
        ("usage", "/console/usage"),
        ("audit", "/console/audit"),
    ]


def console_gets() -> list[re.Pattern[str]]:
    """Each GET route of the console as a pattern of the paths it answers."""
    from fastapi.routing import iter_route_contexts

    from api.console import router

    found = []
    for context in iter_route_contexts(router.routes):
        methods = getattr(context.original_route, "methods", None) or set()
        if "GET" in methods and context.path:
            found.append(re.compile(re.sub(r"\{[^}]+\}", "[^/]+", context.path)))
    return found


NOT_PAGES = (
    (re.compile(r"/console/live"), "the live event stream"),
    (re.compile(r".*\.csv"), "a download"),
    (re.compile(r".*/backlog"), "read from the store's API, not the database"),
)
"""Console GETs that are not pages to time: found among the routes, reported and left out."""


def extra_pages(
    routes: list[re.Pattern[str]], known: list[tuple[str, str]]
) -> tuple[list[str], list[tuple[str, str]]]:
    """Console GETs without parameters that the list does not name (pages added later), and
    the ones left out with the reason."""
    paths = {url.split("?", 1)[0] for _, url in known} | {"/console/sign-in"}
    extra, left_out = [], []
    for route in routes:
        path = route.pattern
        if "[^/]+" in path or path in paths:
            continue
        reason = next((why for match, why in NOT_PAGES if match.fullmatch(path)), None)
        if reason is None:
            extra.append(path)
        else:
            left_out.append((path, reason))
    return sorted(extra), sorted(left_out)


@dataclass
class Figure:
    label: str
    url: str
    status: str
    p50: float = float("nan")
    p99: float = float("nan")


async def measure(client: httpx.AsyncClient, label: str, url: str, rounds: int) -> Figure:
    first = await client.get(url)
    if first.status_code == 404:
        return Figure(label, url, "missing (404)")
    if first.status_code != 200:
        return Figure(label, url, f"answered {first.status_code}")
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = await client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            return Figure(label, url, f"answered {answer.status_code}")
    p50, p99 = percentile(times, 50), percentile(times, 99)
    return Figure(label, url, "ok" if p99 <= TARGET_MS else "over", p50, p99)


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    import logging

    level = logging.root.level
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        logging.root.setLevel(level)


async def run(url: str, args: argparse.Namespace) -> list[Figure]:
    from api.app import create_app
    from api.console.auth import COOKIE, open_session
    from engine.store.vault import Cipher
    from sous.container import build
    from sous.serve import freeze_heap
    from sous.settings import Settings
    from sous.wiring import wire

    settings = Settings(database_url=url)
    container = build(settings)
    started = time.perf_counter()
    seeded = seed(
        container.db, Cipher(settings.secret_key.get_secret_value()), args.recipes, args.runs
    )
    took = time.perf_counter() - started
    counts = ", ".join(f"{v:,} {k}" for k, v in seeded.rows.items())
    print(f"seeded in {took:.1f} s: {counts}", flush=True)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(container.db.dispose)
        await wire(container, stack)
        await container.engine.start()
        stack.push_async_callback(container.engine.stop)
        app = create_app(container)
        freeze_heap()  # as sous serve does once started
        opened = open_session(
            container.db,
            WORKSPACE,
            scopes=["read", "write", "admin"],
            user_id="bench",
            now=container.clock.now(),
        )
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sous.bench", cookies={COOKIE: opened.token}
        ) as client:
            routes = console_gets()
            known = pages(seeded)
            extra, left_out = extra_pages(routes, known)
            wanted = known + [(path.removeprefix("/console"), path) for path in extra]
            figures = []
            for label, page in wanted:
                path = page.split("?", 1)[0]
                if not any(r.fullmatch(path) for r in routes):
                    figures.append(Figure(label, page, "missing"))
                    continue
                figures.append(await measure(client, label, page, args.rounds))
            figures += [
                Figure(path.removeprefix("/console"), path, f"not measured: {why}")
                for path, why in left_out
            ]
    return figures


def report(figures: list[Figure], rounds: int) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n(load average {load} on {os.cpu_count()} CPUs: figures from a busy machine run high)")
    print(f"\n{'page':<22} {'p50 ms':>8} {'p99 ms':>8}  verdict (p99 ≤ {TARGET_MS:.0f} ms)")
    for f in figures:
        if f.status in ("ok", "over"):
            verdict = "met" if f.status == "ok" else "NOT met"
            line = f"{f.label:<22} {f.p50:8.1f} {f.p99:8.1f}  {verdict}"
        else:
            line = f"{f.label:<22} {'':>8} {'':>8}  {f.status}"
        print(f"{line}    {f.url}")
    measured = [f for f in figures if f.status in ("ok", "over")]
    over = [f.label for f in measured if f.status == "over"]
    missing = [f.label for f in figures if f.status.startswith("missing")]
    failing = [f.label for f in figures if f.status.startswith("answered")]
    print(
        f"\n{len(measured)} pages measured ({rounds} renders each), "
        f"{len(over)} over the target{': ' + ', '.join(over) if over else ''}; "
        f"{len(missing)} missing{': ' + ', '.join(missing) if missing else ''}"
        + (f"; not answering 200: {', '.join(failing)}" if failing else "")
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=100, help="renders of each page")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--recipes", type=int, default=1_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args(argv)
    os.environ.setdefault("SOUS_LOG_LEVEL", "warning")
    folder = Path(tempfile.mkdtemp(prefix="sous-bench-console-"))
    with database(args.database, folder) as url, quiet_logs():
        figures = asyncio.run(run(url, args))
    report(figures, args.rounds)


if __name__ == "__main__":
    main()
