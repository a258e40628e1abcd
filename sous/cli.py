"""The ``sous`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sous.output import emit_json, paint

Handler = Callable[[argparse.Namespace], int]


def cmd_validate(args: argparse.Namespace) -> int:
    from engine.loader import load_paths
    from engine.templates.template import validate_templates
    from sous.container import build_registry

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"sous validate: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    paths, registry = [Path(p) for p in args.paths], build_registry()
    result = load_paths(paths, registry)
    templates = validate_templates(paths, registry)
    errors = result.errors + templates.errors
    if args.json:
        emit_json(
            {
                "valid": [{"id": r.id, "file": str(f)} for f, r in result.recipes],
                "templates": len(templates.templates),
                "errors": [
                    {"file": e.file, "line": e.line, "path": e.path, "message": e.message}
                    for e in errors
                ],
            }
        )
    else:
        for error in errors:
            print(paint(str(error), "red"))
        summary = (
            f"{len(result.recipes)} valid recipe(s), {len(templates.templates)} valid "
            f"template(s), {len(errors)} error(s)"
        )
        print(paint(summary, "green" if not errors else "yellow"))
    return 1 if errors else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from engine.schema import recipe_schema
    from sous.container import build_registry

    text = json.dumps(recipe_schema(build_registry()), indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from engine.clock import SystemClock
    from engine.dryrun import dry_run
    from engine.events import Event
    from engine.loader import load_file
    from sous.container import build_registry

    registry = build_registry()
    loaded = load_file(Path(args.recipe), registry)
    if loaded.errors or not loaded.recipes:
        for error in loaded.errors:
            print(paint(str(error), "red"), file=sys.stderr)
        return 2
    recipe = loaded.recipes[0][1]
    try:
        raw = json.loads(Path(args.event).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        print(f"sous test: cannot read the event {args.event}: {exc}", file=sys.stderr)
        return 2
    wrapped = isinstance(raw, dict) and "payload" in raw and "type" in raw
    clock = SystemClock()
    now = clock.now()
    event = Event(
        id="evt_dry_run",
        type=raw["type"] if wrapped else recipe.trigger.type,
        payload=raw["payload"] if wrapped else raw,
        workspace="default",
        store=(raw.get("store") if wrapped else None),
        source="dry-run",
        dedup_key="dry-run",
        occurred_at=now,
        received_at=now,
    )
    result = dry_run(recipe, event, registry, clock.now)
    if args.json:
        emit_json(result.to_dict())
    else:
        verdict = (
            paint("would fire", "green") if result.matched else paint("would not fire", "yellow")
        )
        print(f"{recipe.id}: {verdict} ({result.stage})")
        if result.reason:
            print(f"  why: {result.reason.get('message', result.reason)}")
        for step in result.steps:
            state = {True: "runs", False: "skipped (if)", None: "depends on earlier steps"}[
                step.would_run
            ]
            print(f"  step {step.id} ({step.use}): {state}")
            print(f"    with: {json.dumps(step.params, default=str)}")
            if step.error:
                print(paint(f"    error: {step.error}", "red"))
    return 0 if result.matched else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from sous.serve import serve

    return asyncio.run(serve(args))


def cmd_demo(args: argparse.Namespace) -> int:
    from sous.demo import run_demo

    return asyncio.run(run_demo(as_json=args.json))


def cmd_migrate(args: argparse.Namespace) -> int:
    from engine.db import Database
    from sous.migrate import upgrade
    from sous.settings import load_settings
    from sous.worker import migrate_queue

    settings = load_settings(database_url=args.database_url)
    engine = Database(settings.database_url).engine
    upgrade(engine)
    queue_message = migrate_queue(settings, engine)
    if queue_message:
        print(queue_message)
    print(f"database is at the newest schema: {settings.database_url.split('@')[-1]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sous", description="Workflow automation for BigCommerce stores."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check recipe files; exit 1 if any is invalid")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("schema", help="print the recipe JSON Schema (for editors)")
    p.add_argument("--output", "-o", help="write to a file instead of standard output")
    p.set_defaults(handler=cmd_schema)

    p = sub.add_parser("test", help="dry-run a recipe on an event: would it fire, and with what")
    p.add_argument("recipe", metavar="RECIPE")
    p.add_argument("--event", required=True, metavar="EVENT.json")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_test)

    p = sub.add_parser("serve", help="run the API, the engine and the scheduler")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--database-url", default=None)
    p.add_argument("--workers", type=int, default=None, help="concurrent runs")
    p.add_argument("--recipes", default=None, help="load recipes from this folder at start")
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="also run a store simulator and an SMTP sink, with example recipes",
    )
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("demo", help="run the headline scenario end to end and report")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.add_argument("--database-url", default=None)
    p.set_defaults(handler=cmd_migrate)

    from api.cli_keys import register as register_keys
    from sous.cli_packs import register as register_packs
    from sous.worker import register as register_worker

    register_keys(sub)
    register_packs(sub)
    register_worker(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
