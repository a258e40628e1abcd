"""``sous runs replay|release|discard``: act on every run a filter names, through a running
Sous's API (``POST /v1/runs/bulk/…``), so the server that owns the runs does the work in both
modes::

    sous runs replay --recipe sold-out-alert --status failed --since 2d
    sous runs release --recipe restock --yes --json

It first asks for a count (nothing changes), shows it and asks to go on (``--yes`` skips the
question; without a terminal it is required), then goes page by page — pinned to the runs that
matched at first — with a progress line on a terminal. Exit status: 0 done (runs refused are
listed), 1 the server refused, 2 a usage error or nothing confirmed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from sous.cli_backtest import when
from sous.output import emit_json, paint, plural

if TYPE_CHECKING:
    import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
VERBS = {"replay": "replayed", "release": "released", "discard": "discarded"}


def body_of(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """The request's filter from the options (``ValueError`` for a bad time)."""
    body: dict[str, Any] = {}
    if args.recipe:
        body["recipe"] = args.recipe
    if args.status:
        body["status"] = args.status
    if args.store:
        body["store"] = args.store
    for name in ("since", "until"):
        value = getattr(args, name)
        if value:
            body[name] = when(value, now).isoformat()
    if args.action == "replay":
        body["from"] = args.from_step
        body["recipe_version"] = args.recipe_version
    return body


async def call(client: httpx.AsyncClient, action: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = await client.post(f"/v1/runs/bulk/{action}", json=body)
    if answer.status_code != 200:
        try:
            message = answer.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = answer.text[:300]
        raise RuntimeError(f"the server answered {answer.status_code}: {message}")
    found: dict[str, Any] = answer.json()
    return found


async def bulk(
    client: httpx.AsyncClient,
    args: argparse.Namespace,
    body: dict[str, Any],
    confirm: Callable[[int], bool],
    err: TextIO,
) -> tuple[int, dict[str, Any]]:
    """Count, confirm, then act page by page; the exit status and the totals."""
    action = args.action
    preview = await call(client, action, {**body, "preview": True})
    totals: dict[str, Any] = {"matched": preview["matched"], "done": 0, "made": [], "refused": {}}
    if not preview["matched"] or not confirm(preview["matched"]):
        return (0 if not preview["matched"] else 2), totals
    page = {**body, "preview": False, "limit": args.page, "upto": preview["upto"]}
    live = err.isatty()
    while True:
        found = await call(client, action, page)
        totals["done"] += found["done"]
        totals["made"] += found["made"]
        totals["refused"].update(found["refused"])
        if live:
            handled = totals["done"] + len(totals["refused"])
            err.write(f"\r{VERBS[action]} {totals['done']:,} of {preview['matched']:,} runs")
            err.write(f" ({handled:,} handled)…")
            err.flush()
        if found["next"] is None:
            break
        page["after"] = found["next"]
    if live:
        err.write("\r\033[K")
    return 0, totals


def _ask(stream: TextIO, action: str) -> Callable[[int], bool]:
    def confirm(count: int) -> bool:
        if not sys.stdin.isatty():
            stream.write(f"sous runs {action}: {plural(count, 'run')} match; add --yes to go on\n")
            return False
        stream.write(f"{action.capitalize()} {plural(count, 'run')}? [y/N] ")
        stream.flush()
        return sys.stdin.readline().strip().lower() in ("y", "yes")

    return confirm


def _report(action: str, totals: dict[str, Any]) -> None:
    if not totals["matched"]:
        print("no run matches")
        return
    print(paint(f"{VERBS[action]} {plural(totals['done'], 'run')}", "green"))
    for run_id, reason in sorted(totals["refused"].items()):
        print(paint(f"  {run_id}: {reason}", "yellow"))


def cmd_runs(args: argparse.Namespace) -> int:
    import asyncio

    import httpx

    key = args.key or os.environ.get("SOUS_API_KEY")
    if not key:
        print("sous runs: set SOUS_API_KEY (or --key) to an API key with write", file=sys.stderr)
        return 2
    try:
        body = body_of(args, datetime.now(UTC))
    except ValueError as exc:
        print(f"sous runs: {exc}", file=sys.stderr)
        return 2
    url = (args.url or os.environ.get("SOUS_API_URL") or DEFAULT_URL).rstrip("/")
    confirm = (lambda _: True) if args.yes else _ask(sys.stderr, args.action)

    async def go() -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as client:
            return await bulk(client, args, body, confirm, sys.stderr)

    try:
        status, totals = asyncio.run(go())
    except (RuntimeError, httpx.HTTPError) as exc:
        print(paint(f"sous runs {args.action}: {exc}", "red", sys.stderr), file=sys.stderr)
        return 1
    if args.json:
        emit_json({"action": args.action, **totals})
    elif status == 0:
        _report(args.action, totals)
    return status


def register(sub: Any) -> None:
    runs = sub.add_parser("runs", help="replay, release or discard many runs (via the API)")
    actions = runs.add_subparsers(dest="action", required=True, metavar="ACTION")
    helps = {
        "replay": "run finished runs' events through their recipes again (failed by default)",
        "release": "let held runs go ahead",
        "discard": "drop held runs",
    }
    for action, text in helps.items():
        p = actions.add_parser(action, help=text)
        p.add_argument("--recipe", help="a recipe id or uid")
        p.add_argument("--status", action="append", help="a run status (repeat for several)")
        p.add_argument("--since", help="created at or after: an ISO 8601 time or a duration ago")
        p.add_argument("--until", help="created before (as --since)")
        p.add_argument("--store", help="a store hash")
        if action == "replay":
            p.add_argument(
                "--from",
                dest="from_step",
                choices=("start", "failed_step"),
                default="start",
                help="run every step again, or from the failed one",
            )
            p.add_argument(
                "--recipe-version",
                choices=("original", "current"),
                default="original",
                help="the version each run ran, or today's",
            )
        p.add_argument("--page", type=int, default=500, help="runs per request (at most 1,000)")
        p.add_argument("--yes", action="store_true", help="go on without asking")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("--url", help=f"the Sous API (env SOUS_API_URL; default {DEFAULT_URL})")
        p.add_argument("--key", help="an API key with the write scope (env SOUS_API_KEY)")
        p.set_defaults(handler=cmd_runs)
