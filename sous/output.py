"""Terminal output: plain tables, colour only where the terminal wants it, JSON for scripts."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO


def use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(os.environ.get("FORCE_COLOR")) or stream.isatty()


def paint(text: str, colour: str, stream: TextIO | None = None) -> str:
    codes = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}
    if not use_colour(stream or sys.stdout):
        return text
    return f"\033[{codes[colour]}m{text}\033[0m"


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], stream: TextIO | None = None
) -> None:
    stream = stream or sys.stdout
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        print(paint(line, "bold", stream) if n == 0 else line, file=stream)


def emit_json(data: Any, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    json.dump(data, stream, indent=2, default=str)
    stream.write("\n")


def plural(count: int, noun: str) -> str:
    """``1 error``, ``2 errors``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def progress(message: str) -> None:
    """Say on standard error what slow work is under way, on a terminal only (pipes and
    scripts get clean output)."""
    if sys.stderr.isatty():
        print(paint(f"{message}…", "dim", sys.stderr), file=sys.stderr, flush=True)
