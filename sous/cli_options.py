"""Command-line options shared by several commands; an option backed by a setting names it.

Kept free of heavy imports: the parser is built on every command, ``--help`` included.
"""

from __future__ import annotations

import argparse
from typing import Any


def setting(parser: argparse.ArgumentParser, flag: str, help: str, **kwargs: Any) -> None:
    """An option that overrides a ``SOUS_…`` setting (README, Settings); its help names the
    environment variable, ``--database-url`` → ``SOUS_DATABASE_URL``."""
    variable = kwargs.pop("variable", None) or "SOUS_" + flag.lstrip("-").replace("-", "_").upper()
    parser.add_argument(flag, default=None, help=f"{help} (env {variable})", **kwargs)


def database(parser: argparse.ArgumentParser) -> None:
    setting(parser, "--database-url", "database URL: a SQLite file or postgresql+psycopg://…")
