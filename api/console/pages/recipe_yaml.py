"""A recipe as YAML in the console's editor: the document written out for editing, and the
text read back, with every problem placed at its line and field (the loader's line index, as
the API does for a YAML body)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from engine import ErrorDetail, Loc, format_loc, line_for, parse_yaml

HIDDEN = ("version",)
"""Fields the editor leaves out: the version is the form's own (what the text is based on)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the text: where (line and field, when known) and what."""

    line: int | None
    field: str
    message: str
    source: str = ""
    """The text of that line, to show beside the message."""


def recipe_yaml(document: dict[str, Any]) -> str:
    """``document`` as YAML in its own field order; conditions one per line, as JSON (which
    YAML reads as it is), the way recipe files write them."""
    parts = []
    for key, value in document.items():
        if key in HIDDEN:
            continue
        if key == "conditions" and isinstance(value, list) and value:
            rules = "".join(f"  - {json.dumps(rule, ensure_ascii=False)}\n" for rule in value)
            parts.append(f"conditions:\n{rules}")
        else:
            parts.append(
                yaml.safe_dump(
                    {key: value}, sort_keys=False, allow_unicode=True, default_flow_style=False
                )
            )
    return "".join(parts)


def _line_of(text: str, line: int | None) -> str:
    if line is None:
        return ""
    lines = text.splitlines()
    return lines[line - 1].strip()[:200] if 0 < line <= len(lines) else ""


def read_recipe(text: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The document the text holds, or ``None`` and why not (not YAML, not one mapping)."""
    if not text.strip():
        return None, [Problem(None, "", "The recipe is empty: write its YAML.")]
    docs, errors = parse_yaml(text, "recipe")
    if errors:
        return None, [Problem(e.line, "", e.message, _line_of(text, e.line)) for e in errors]
    if len(docs) != 1:
        return None, [Problem(None, "", f"Write one YAML document, not {len(docs)}.")]
    document, _ = docs[0]
    if not isinstance(document, dict):
        return None, [Problem(1, "", "A recipe is a mapping of fields (id:, name:, trigger:, …).")]
    return document, []


def _located(loc: Loc, message: str, lines: dict[Loc, int], text: str) -> Problem:
    line = line_for(lines, loc)
    return Problem(line, format_loc(loc), message, _line_of(text, line))


def where(details: list[ErrorDetail], text: str) -> list[Problem]:
    """The validation's problems with the text's lines (fields the text lacks get the line of
    the nearest field that encloses them)."""
    docs, _ = parse_yaml(text, "recipe")
    lines = docs[0][1] if len(docs) == 1 else {}
    return [
        Problem(d.line, "", d.message, _line_of(text, d.line))
        if d.line is not None
        else _located(d.loc, d.message, lines, text)
        for d in details
    ]
