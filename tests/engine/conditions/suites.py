"""Loading the shared JsonLogic conformance data, and JSON-typed comparison of results.

The data lives beside the repository (``../shared/jsonlogic``, see its SOURCES.md); tests that
need it skip with a reason when it is absent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "jsonlogic"
OFFICIAL = SHARED / "jsonlogic.com" / "tests.json"
COMPAT = SHARED / "compat-tables" / "suites"
MISSING_REASON = f"JsonLogic conformance data not found at {SHARED.resolve()}"

EXTENSION_FILES = frozenset(
    {
        "additional.json",
        "chained.json",
        "coalesce.json",
        "exists.json",
        "iterators.extra.json",
        "scopes.json",
        "throw.json",
        "try.json",
        "try.extra.json",
        "val.json",
        "val.extra.json",
        "val-compat.json",
        "arithmetic/plus.extra.json",
        "arithmetic/minus.extra.json",
        "arithmetic/multiply.extra.json",
        "arithmetic/divide.extra.json",
        "arithmetic/modulo.extra.json",
    }
)
"""Suites for the "JSON Logic Core" extensions (val, exists, ??, try, throw, preserve,
scopes, chaining); every other suite exercises the classic operators."""


@dataclass(frozen=True)
class Case:
    file: str
    index: int
    description: str
    rule: Any
    data: Any
    result: Any = None
    error: str | None = None  # the expected error type, when evaluation must raise

    @property
    def id(self) -> str:
        return f"{self.file}#{self.index}:{self.description}"


def official_cases() -> list[tuple[Any, Any, Any]]:
    """The ``[rule, data, expected]`` cases of jsonlogic.com/tests.json (comments dropped)."""
    if not OFFICIAL.exists():
        return []
    return [tuple(c) for c in json.loads(OFFICIAL.read_text()) if not isinstance(c, str)]


def compat_files() -> list[str]:
    """Suite files in ``index.json`` order, then any file the index does not list."""
    if not COMPAT.exists():
        return []
    ordered: list[str] = json.loads((COMPAT / "index.json").read_text())
    others = sorted(
        p.relative_to(COMPAT).as_posix() for p in COMPAT.rglob("*.json") if p.name != "index.json"
    )
    return ordered + [f for f in others if f not in ordered]


def compat_cases() -> list[Case]:
    """Every case of every compat suite file."""
    cases = []
    for file in compat_files():
        entries = [e for e in json.loads((COMPAT / file).read_text()) if isinstance(e, dict)]
        for index, entry in enumerate(entries):
            error = entry.get("error")
            cases.append(
                Case(
                    file=file,
                    index=index,
                    description=entry["description"],
                    rule=entry["rule"],
                    data=entry.get("data"),
                    result=entry.get("result"),
                    error=error["type"] if error is not None else None,
                )
            )
    return cases


def json_equal(a: Any, b: Any) -> bool:
    """Deep equality with JSON types: ``True != 1``, ``1 == 1.0``, ``None`` only equals ``None``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b
