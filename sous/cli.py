"""The ``sous`` command line.

Building the parser imports nothing heavy (``sous --help`` and ``--version`` answer at once);
each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sous import cli_options
from sous.output import emit_json, paint, plural, progress

Handler = Callable[[argparse.Namespace], int]


def _is_template(path: Path) -> bool:
    """A file named on the command line is a template if it sits in a ``templates`` folder or
    declares ``inputs:``; anything else is a recipe."""
    if "templates" in path.parts:
        return True
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(r"^inputs:", text, re.MULTILINE) is not None


def cmd_validate(args: argparse.Namespace) -> int:
    from engine.authoring.loader import load_paths
    from engine.templates.template import validate_templates
    from sous.registry import build_registry

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"sous validate: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    paths = [Path(p) for p in args.paths]
    progress("loading the connectors")
    registry = build_registry()
    progress(f"checking {', '.join(args.paths)}")
    # Folders hold both; a file is checked once, as a recipe or as a template.
    result = load_paths([p for p in paths if p.is_dir() or not _is_template(p)], registry)
    templates = validate_templates([p for p in paths if p.is_dir() or _is_template(p)], registry)
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
        counts = [plural(len(result.recipes), "valid recipe")]
        if templates.templates:
            counts.append(plural(len(templates.templates), "valid template"))
        summary = ", ".join([*counts, plural(len(errors), "error")])
        print(paint(summary, "green" if not errors else "yellow"))
    return 1 if errors else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from engine.authoring.schema import recipe_schema
    from sous.registry import build_registry

    text = json.dumps(recipe_schema(build_registry()), indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from engine.authoring.dryrun import dry_run
    from engine.authoring.loader import load_file
    from engine.clock import SystemClock
    from engine.model.events import Event
    from sous.registry import build_registry

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
    progress("starting Sous")
    import asyncio

    from sous.serve import serve

    return asyncio.run(serve(args))


def cmd_demo(args: argparse.Namespace) -> int:
    import asyncio

    from sous.demo import run_demo

    return asyncio.run(run_demo(as_json=args.json))


def cmd_migrate(args: argparse.Namespace) -> int:
    progress("migrating the database")
    from engine.store.db import Database
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


def cmd_worker(args: argparse.Namespace) -> int:
    progress("starting a worker")
    from sous.worker import cmd_worker as run

    return run(args)


class _Version(argparse.Action):
    """``--version``: the installed distribution's version, read only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("sous")
        except PackageNotFoundError:
            found = "unknown (not installed)"
        print(f"sous {found}")
        parser.exit()


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def register_worker(sub: Any) -> None:
    """``sous worker`` (also used by :func:`sous.worker.main`)."""
    p = sub.add_parser("worker", help="run recipes from the shared PostgreSQL queue (no HTTP)")
    cli_options.database(p)
    cli_options.setting(p, "--workers", "concurrent runs in this process", type=int)
    p.add_argument(
        "--alive-file",
        default=None,
        help="touch this file while heartbeats reach the database (env SOUS_ALIVE_FILE; "
        "python -m sous.health checks its age)",
    )
    p.set_defaults(handler=cmd_worker)


def _register_run(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the API, the engine and the scheduler")
    cli_options.setting(p, "--host", "address to listen on")
    cli_options.setting(p, "--port", "port to listen on", type=int)
    cli_options.database(p)
    cli_options.setting(p, "--workers", "concurrent runs", type=int)
    cli_options.setting(
        p, "--recipes", "load recipes from this folder at start", variable="SOUS_RECIPES_DIR"
    )
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="also run a store simulator and an SMTP sink, with example recipes",
    )
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("demo", help="run the headline scenario end to end and report")
    _json(p)
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("migrate", help="apply database migrations")
    cli_options.database(p)
    p.set_defaults(handler=cmd_migrate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sous",
        description="Workflow automation for BigCommerce stores.",
        epilog="Settings come from SOUS_* environment variables; options override them.",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check recipe files; exit 1 if any is invalid")
    p.add_argument("paths", nargs="+", metavar="PATH", help="recipe or template files, folders")
    _json(p)
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("schema", help="print the recipe JSON Schema (for editors)")
    p.add_argument("--output", "-o", help="write to a file instead of standard output")
    p.set_defaults(handler=cmd_schema)

    p = sub.add_parser("test", help="dry-run a recipe on an event: would it fire, and with what")
    p.add_argument("recipe", metavar="RECIPE", help="the recipe's YAML file")
    p.add_argument(
        "--event",
        required=True,
        metavar="EVENT.json",
        help="an event payload, or {type, payload, store}",
    )
    _json(p)
    p.set_defaults(handler=cmd_test)

    _register_run(sub)
    from api.cli_keys import register as register_keys
    from sous.cli_backtest import register as register_backtest
    from sous.cli_packs import register as register_packs
    from sous.cli_runs import register as register_runs

    register_backtest(sub)
    register_keys(sub)
    register_packs(sub)
    register_runs(sub)
    register_worker(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from sous.logs import configure_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(default="warning")  # serve and worker use the setting (default info)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``sous schema | head``): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
