"""``sous keys create``: make an API key (and its workspace, if new) from the command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sous import cli_options


def cmd_keys_create(args: argparse.Namespace) -> int:
    from api.keys import SCOPES, create_key
    from engine import Database
    from sous.migrate import upgrade
    from sous.output import progress
    from sous.settings import load_settings

    settings = load_settings(database_url=args.database_url)
    progress("opening the database")
    db = Database(settings.database_url)
    try:
        upgrade(db.engine)
        key = create_key(
            db, args.workspace, args.scope or list(SCOPES), args.name, agency=args.agency
        )
    except ValueError as exc:
        print(f"sous keys create: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    print(f"API key for workspace {args.workspace!r} (shown only once):", file=sys.stderr)
    print(key)
    return 0


def register(subparsers: Any) -> None:
    """Add ``sous keys …`` to the command line (``subparsers`` from ``add_subparsers``)."""
    keys = subparsers.add_parser("keys", help="manage API keys")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    p = actions.add_parser("create", help="create an API key; prints it once")
    p.add_argument("--workspace", default="default", help="workspace name (created if missing)")
    p.add_argument("--name", default="cli", help="a label for the key")
    # Checked by create_key (importing the scopes here would slow every command's start).
    p.add_argument(
        "--scope", action="append", help="read, write or admin (repeatable; default: all three)"
    )
    p.add_argument(
        "--agency",
        action="store_true",
        help="an agency key: it creates client workspaces and acts in them (Sous-Workspace)",
    )
    cli_options.database(p)
    p.set_defaults(handler=cmd_keys_create)
