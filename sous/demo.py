"""``sous demo``: the headline scenario end to end, on a throwaway database and sandbox store.

Stock of "Cat Eye Sunglasses" hits zero → the store's webhooks reach Sous → the out-of-stock
recipe puts the product on backorder (what shoppers see on the store changes) → staff get an
e-mail. Exit 0 when all three happened, 1 otherwise; ``--json`` prints one JSON object.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from sous.output import emit_json, paint
from sous.sandbox import DEMO_PRODUCT, DEMO_STORE, DEMO_TOKEN, free_port
from sous.settings import load_settings

FINAL = ("succeeded", "succeeded_with_errors", "failed", "loop_stopped", "skipped", "cancelled")


async def run_demo(as_json: bool = False, timeout: float = 60.0) -> int:
    folder = Path(tempfile.mkdtemp(prefix="sous-demo-"))
    os.environ["SOUS_DATABASE_URL"] = f"sqlite:///{folder / 'demo.db'}"
    settings = load_settings(port=free_port())
    from sous.serve import running

    started = time.monotonic()
    report: dict[str, Any] = {"ok": False, "steps": []}
    async with running(settings, sandbox=True, shopper=False, announce=False) as (container, _):
        sandbox = container.sandbox
        assert sandbox is not None  # running(..., sandbox=True) attached it
        finished: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        container.engine.subscribe(
            lambda kind, data: (
                finished.put_nowait(data) if kind == "run" and data.get("status") in FINAL else None
            )
        )
        await asyncio.wait_for(sandbox.ready.wait(), timeout)
        await sandbox.sell_out(DEMO_PRODUCT)
        report["steps"].append({"what": "stock hits zero", "product": DEMO_PRODUCT})
        try:
            run = await asyncio.wait_for(finished.get(), timeout)
        except TimeoutError:
            report["error"] = f"no run finished within {timeout:g}s"
            return _finish(report, as_json)
        stored = container.engine.recipes.by_uid(run["recipe_uid"])
        report["run"] = {
            "id": run["id"],
            "recipe": stored.recipe.id if stored else None,
            "status": run["status"],
        }
        async with httpx.AsyncClient(
            base_url=f"{sandbox.simulator_url}/stores/{DEMO_STORE}",
            headers={"X-Auth-Token": DEMO_TOKEN},
        ) as sim:
            product = (await sim.get("/v3/catalog/products", params={"name": DEMO_PRODUCT})).json()[
                "data"
            ][0]
        report["product"] = {
            k: product.get(k)
            for k in (
                "id",
                "name",
                "inventory_level",
                "availability",
                "preorder_message",
                "preorder_release_date",
            )
        }
        on_backorder = product.get("availability") == "preorder"
        report["steps"].append(
            {
                "what": "product put on backorder",
                "ok": on_backorder,
                "availability": product.get("availability"),
            }
        )
        mails = [m.to_dict() for m in sandbox.sink.messages]
        report["emails"] = [{"to": m["to"], "subject": m["subject"]} for m in mails]
        report["steps"].append({"what": "staff e-mailed", "ok": bool(mails)})
        report["ok"] = run["status"] == "succeeded" and on_backorder and bool(mails)
    report["seconds"] = round(time.monotonic() - started, 2)
    return _finish(report, as_json)


def _finish(report: dict[str, Any], as_json: bool) -> int:
    if as_json:
        emit_json(report)
        return 0 if report["ok"] else 1
    print(paint("Sous demo: a best-seller sells out", "bold"))
    print(f"  1. stock of {DEMO_PRODUCT} hits zero")
    if "run" in report:
        run = report["run"]
        print(f"  2. recipe {run['recipe']} ran: {run['status']} (run {run['id']})")
        product = report["product"]
        print(
            f"  3. on the store: availability {product['availability']}, "
            f"message {product['preorder_message']!r}, ships {product['preorder_release_date']}"
        )
        for mail in report["emails"]:
            print(f"  4. e-mail to {', '.join(mail['to'])}: {mail['subject']}")
    if report.get("error"):
        print(paint(f"  error: {report['error']}", "red"))
    verdict = paint("demo succeeded", "green") if report["ok"] else paint("demo FAILED", "red")
    print(f"{verdict} in {report.get('seconds', '?')}s")
    return 0 if report["ok"] else 1
