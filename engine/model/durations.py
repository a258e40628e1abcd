"""Durations as recipes write them: ``"90s"``, ``"1h30m"``, ``"1.5h"``, ``"500ms"``, ``"2d"``,
``"1w 1s"``, or a number of seconds. One parser for templates, limits, waits and schedules."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d|w)", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_HINT = "use a number of seconds or text such as 90s, 15m, 1h30m, 1.5h, 2d"


def parse_duration(value: str | int | float) -> timedelta:
    """The duration ``value`` names; :class:`ValueError` saying how to write one otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"not a duration: {value!r} ({_HINT})")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return timedelta(seconds=float(text))
    total, pos = 0.0, 0
    for part in _PART.finditer(text):
        if text[pos : part.start()].strip():
            break
        total += float(part["n"]) * _UNITS[part["unit"].lower()]
        pos = part.end()
    if pos == 0 or text[pos:].strip():
        raise ValueError(f"not a duration: {value!r} ({_HINT})")
    return timedelta(seconds=total)
