"""``sous backtest RECIPE --since … [--until …]``: what a recipe would have done over the events
stored in a time range — a saved recipe (by id) or a draft (a YAML file). Reads only: the
database is neither migrated nor written. Progress goes to standard error on a terminal; the
report to standard output (``--json`` for scripts). Exit status: 0 done, 1 the recipe is invalid
or unknown, 2 a usage error."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sous import cli_options
from sous.output import emit_json, paint, plural

if TYPE_CHECKING:
    from engine.model.recipe import Recipe
    from engine.registry import Registry
    from engine.store.db import Database


def when(text: str, now: datetime) -> datetime:
    """An ISO 8601 time (UTC unless it says otherwise), or a duration ago: ``7d``, ``12h``."""
    from engine.model.durations import parse_duration

    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            return now - parse_duration(text)
        except (OverflowError, ValueError):
            raise ValueError(
                f"{text!r} is neither a time (2026-11-01T00:00:00Z) nor a duration ago (7d)"
            ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Progress:
    """``read 40,000 events, 1,234 would fire`` on one line of a terminal, at most every
    half-second (nothing when standard error is not a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._on = stream.isatty()
        self._last = 0.0

    def __call__(self, read: int, fired: int) -> None:
        now = time.monotonic()
        if not self._on or now - self._last < 0.5:
            return
        self._last = now
        self._stream.write(f"\rread {read:,} events, {fired:,} would fire…")
        self._stream.flush()

    def done(self) -> None:
        if self._on and self._last:
            self._stream.write("\r\033[K")
            self._stream.flush()


def _recipe(
    args: argparse.Namespace, db: Database, registry: Registry
) -> tuple[Recipe, str | None] | str:
    """The recipe to backtest and its uid (a draft has none), or what is wrong."""
    from engine.authoring.loader import load_file
    from engine.clock import SystemClock
    from engine.store.recipes import SqlRecipeStore

    path = Path(args.recipe)
    if path.is_file():
        loaded = load_file(path, registry)
        if loaded.errors or not loaded.recipes:
            return "\n".join(str(e) for e in loaded.errors) or f"{path} holds no recipe"
        return loaded.recipes[0][1], None
    stored = SqlRecipeStore(db, registry, SystemClock()).find(args.workspace, args.recipe)
    if stored is None:
        return f"no recipe {args.recipe!r} in workspace {args.workspace!r}, and no such file"
    return stored.recipe, stored.uid


def _print(report: dict[str, Any]) -> None:
    until = report["until"] or "now"
    print(f"{report['recipe']} from {report['since']} to {until}:")
    verdict = f"would have fired {plural(report['fired'], 'time')}"
    print(f"  {report['events']:,} {report['trigger']} events read; {paint(verdict, 'green')}")
    for stage, count in sorted(report["rejected"].items()):
        if stage != "conditions":
            print(f"  refused by the {stage} stage: {count:,}")
    for tally in report["conditions"]:
        example = (tally["example"] or {}).get("message", "")
        print(f"  condition {tally['index']} said no {tally['rejected']:,} times  {example}")
    for kind, found in report["subjects"].items():
        top = ", ".join(f"{s['name'] or s['id']} ({s['fires']})" for s in found["top"][:5])
        print(f"  {plural(found['distinct'], kind)}; most: {top}")
    if not report["complete"]:
        print(paint(f"  stopped at the limit, at {report['stopped_at']}", "yellow"))
    rate = report["events_per_second"]
    print(paint(f"  {report['seconds']:.2f}s" + (f", {rate:,} events/s" if rate else ""), "dim"))


def cmd_backtest(args: argparse.Namespace) -> int:
    from engine.ops.backtest import backtest
    from engine.store.db import Database
    from sous.registry import build_registry
    from sous.settings import load_settings

    now = datetime.now(UTC)
    try:
        since = when(args.since, now)
        until = when(args.until, now) if args.until else None
    except ValueError as exc:
        print(f"sous backtest: {exc}", file=sys.stderr)
        return 2
    if until is not None and until <= since:
        print("sous backtest: --until must be later than --since", file=sys.stderr)
        return 2
    url = load_settings(database_url=args.database_url).database_url
    file = url.split("///", 1)[-1] if url.startswith("sqlite") and "///" in url else None
    if file is not None and not Path(file).is_file():
        print(f"sous backtest: no database at {file} (SOUS_DATABASE_URL)", file=sys.stderr)
        return 2
    db = Database(url)
    try:
        registry = build_registry()
        found = _recipe(args, db, registry)
        if isinstance(found, str):
            print(paint(found, "red", sys.stderr), file=sys.stderr)
            return 1
        recipe, uid = found
        progress = Progress(sys.stderr)
        report = backtest(
            db,
            registry,
            recipe,
            args.workspace,
            since,
            until,
            uid=uid,
            limit=args.limit,
            progress=progress,
        )
        progress.done()
    finally:
        db.dispose()
    if args.json:
        emit_json(report.to_dict())
    else:
        _print(report.to_dict())
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "backtest",
        help="what a recipe would have done over the stored events of a time range",
    )
    p.add_argument("recipe", metavar="RECIPE", help="a saved recipe's id, or a recipe YAML file")
    p.add_argument("--since", required=True, help="an ISO 8601 time, or a duration ago (7d)")
    p.add_argument("--until", default=None, help="as --since (default: up to the newest event)")
    p.add_argument("--workspace", default="default", help="workspace id (default: default)")
    p.add_argument(
        "--limit", type=int, default=1_000_000, help="the most events to read (default 1,000,000)"
    )
    cli_options.database(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_backtest)
