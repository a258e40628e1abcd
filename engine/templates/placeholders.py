"""``[[ inputs.NAME ]]`` placeholders: found and checked when a template loads, filled in when it
is instantiated.

Placeholders use square brackets so they never clash with the run-time templates (``{{ }}``)
they may sit in; instantiation replaces placeholders and leaves run-time templates alone.
How a value is written depends on where its placeholder stands:

- **the whole value** (``limit: "[[ inputs.limit ]]"``): the input's own value and type — an
  integer stays an integer, a list of e-mail addresses stays a list;
- **inside a run-time expression** (``"{{ now() + days([[ inputs.eta.days ]]) }}"``): a literal
  of that expression language (``14``, ``'text'``, ``['a@x.com']``), so a value can never change
  the expression around it — do not put quotes around the placeholder;
- **in text** (``"Ships in [[ inputs.eta ]]"``): the value as text (a list joined with ``, ``).

``[[ inputs.NAME.PART ]]`` reads a part of a value: ``hour`` and ``minute`` of a time of day;
``seconds``, ``minutes``, ``hours`` and ``days`` (whole) of a duration.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engine.authoring.validation import Loc
from engine.templates.inputs import ATTRIBUTES, InputSpec, attribute

PLACEHOLDER = re.compile(r"\[\[(.*?)\]\]", re.S)
_REFERENCE = re.compile(r"^\s*inputs\.([a-z][a-z0-9_]*)(?:\.([a-z_]+))?\s*$")
_WHOLE = re.compile(r"^\s*\[\[(.*?)\]\]\s*$", re.S)
_BLOCK = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_NO_PLACEHOLDERS = frozenset({"id", "version"})


@dataclass(frozen=True)
class Problem:
    loc: Loc
    message: str


@dataclass(frozen=True)
class Use:
    """One placeholder: where it stands and what it reads."""

    loc: Loc
    name: str
    part: str | None


def _strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str, bool]]:
    """Every string in a document with its place; the flag marks mapping keys."""
    if isinstance(value, str):
        yield loc, value, False
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield (*loc, key), key, True
            yield from _strings(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*loc, index))


def _inside_blocks(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _BLOCK.finditer(text)]


def scan(
    body: dict[str, Any],
    specs: dict[str, InputSpec],
    failed: frozenset[str] | set[str] = frozenset(),
) -> tuple[list[Use], list[Problem]]:
    """Every placeholder in a template body, and every problem with one (``failed`` names
    inputs declared badly: already reported, so placeholders reading them are let be)."""
    uses: list[Use] = []
    problems: list[Problem] = []
    for loc, text, is_key in _strings(body, ()):
        matches = list(PLACEHOLDER.finditer(text))
        if not matches:
            continue
        if is_key:
            problems.append(Problem(loc, "a placeholder cannot stand in a key"))
            continue
        if len(loc) == 1 and loc[0] in _NO_PLACEHOLDERS:
            problems.append(Problem(loc, f"{loc[0]!r} cannot hold a placeholder"))
            continue
        blocks = _inside_blocks(text)
        for match in matches:
            problem = _check(match, text, blocks, specs, failed)
            if problem:
                problems.append(Problem(loc, problem))
            ref = _REFERENCE.match(match[1])
            if ref is not None:
                uses.append(Use(loc, ref[1], ref[2]))
    return uses, problems


def _check(
    match: re.Match[str],
    text: str,
    blocks: list[tuple[int, int]],
    specs: dict[str, InputSpec],
    failed: frozenset[str] | set[str],
) -> str | None:
    ref = _REFERENCE.match(match[1])
    if ref is None:
        return f"unknown placeholder {match[0]!r}: placeholders read inputs, as [[ inputs.NAME ]]"
    name, part = ref[1], ref[2]
    if name in failed:
        return None
    if name not in specs:
        known = ", ".join(specs) or "none are declared"
        return f"{match[0]!r} reads an input that is not declared (inputs: {known})"
    if part is not None:
        parts = ATTRIBUTES.get(specs[name].type, frozenset())
        if part not in parts:
            offer = f"; it has {', '.join(sorted(parts))}" if parts else ""
            return f"a {specs[name].type.value} input has no part {part!r}{offer}"
    start, end = match.span()
    if any(a <= start and end <= b for a, b in blocks):
        before, after = text[start - 1 : start], text[end : end + 1]
        if before and before in "'\"" and before == after:
            return "inside {{ }} or {% %} a placeholder is a literal already: remove its quotes"
    return None


def literal(value: Any) -> str:
    """``value`` written as a literal of the run-time expression language."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return repr(str(value))


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(as_text(v) for v in value)
    return str(value)


def _delimiters(text: str) -> int:
    return sum(text.count(d) for d in ("{{", "{%", "{#", "}}", "%}", "#}"))


class Filler:
    """Fills placeholders with checked input values, remembering which input went where."""

    def __init__(self, specs: dict[str, InputSpec], values: dict[str, Any]) -> None:
        self._specs = specs
        self._values = values
        self.origins: dict[Loc, set[str]] = {}
        self.problems: list[tuple[str, str]] = []

    def _value(self, reference: str) -> tuple[str, Any]:
        ref = _REFERENCE.match(reference)
        assert ref is not None, reference
        name, part = ref[1], ref[2]
        value = self._values[name]
        if part is not None:
            value = attribute(self._specs[name], value, part)
        return name, value

    def fill(self, value: Any, loc: Loc = ()) -> Any:
        if isinstance(value, str):
            return self._string(value, loc)
        if isinstance(value, dict):
            return {k: self.fill(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v, (*loc, i)) for i, v in enumerate(value)]
        return value

    def _string(self, text: str, loc: Loc) -> Any:
        if "[[" not in text:
            return text
        whole = _WHOLE.match(text)
        if whole and len(PLACEHOLDER.findall(text)) == 1:
            name, value = self._value(whole[1])
            self.origins.setdefault(loc, set()).add(name)
            return value
        blocks = _inside_blocks(text)
        pieces: list[tuple[str, str]] = []  # (input name, what replaces its placeholder)
        for match in PLACEHOLDER.finditer(text):
            name, value = self._value(match[1])
            inside = any(a <= match.start() and match.end() <= b for a, b in blocks)
            pieces.append((name, literal(value) if inside else as_text(value)))
        self.origins.setdefault(loc, set()).update(name for name, _ in pieces)
        result = _replace(text, [piece for _, piece in pieces])
        neutral = _delimiters(_replace(text, ["x"] * len(pieces)))
        if _delimiters(result) != neutral:
            for index, (name, piece) in enumerate(pieces):
                alone = ["x"] * len(pieces)
                alone[index] = piece
                if _delimiters(_replace(text, alone)) != neutral:
                    self.problems.append((name, "the value would change the template around it"))
        return result


def _replace(text: str, pieces: list[str]) -> str:
    """``text`` with its placeholders replaced, in order, by ``pieces``."""
    replacements = iter(pieces)
    return PLACEHOLDER.sub(lambda _: next(replacements), text)


def origin(origins: dict[Loc, set[str]], loc: Loc) -> str | None:
    """The input whose value stands at ``loc`` (or around it), if exactly one does."""
    for end in range(len(loc), 0, -1):
        names = origins.get(loc[:end])
        if names:
            return next(iter(names)) if len(names) == 1 else None
    return None
