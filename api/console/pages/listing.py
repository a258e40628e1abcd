"""What the recipes, runs and events pages share: the write check, filters read from the
address (times in UTC), the pager's links, JSON shown as text, and the answer to a form that
worked (a 303 back to the page, with what was done)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends
from fastapi.responses import RedirectResponse

from api.console.auth import Visitor, VisitorDep
from api.console.render import PageError

PAGE_SIZE = 50
"""Rows per page of a list."""
LIVE_HINT = "Live updates are on: new rows appear by themselves."


async def _writer(visitor: VisitorDep) -> Visitor:
    if not visitor.can("write"):
        raise PageError(
            403,
            "This session may only look",
            "Your session was opened with a read-only key. Sign in with a key that has the "
            "write scope to change recipes and runs.",
        )
    return visitor


WriteVisitor = Annotated[Visitor, Depends(_writer)]
"""A signed-in visitor whose session may change recipes and runs (the ``write`` scope)."""


def when_given(value: str, label: str, problems: list[str]) -> datetime | None:
    """A time typed in a filter (``2026-11-27T09:00``, taken as UTC), or ``None`` when blank;
    when it cannot be read, a problem naming ``label`` is added and the filter is left out."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        problems.append(f"{label}: “{value[:40]}” is not a time such as 2026-11-27T09:00.")
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def link(path: str, **params: Any) -> str:
    """``path`` with the non-empty ``params`` as its query string."""
    given = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(given)}" if given else path


def done(path: str, what: str, **params: Any) -> RedirectResponse:
    """After a form that worked: back to ``path``, which says ``what`` was done."""
    return RedirectResponse(link(path, done=what, **params), status_code=303)


JSON_SHOWN = 20_000
"""Characters of a JSON value a page shows (a step's output can be large; the API has it all)."""


def as_json(value: Any) -> str:
    """A JSON value as indented text, for a ``<pre>``; cut after :data:`JSON_SHOWN` characters."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    if len(text) <= JSON_SHOWN:
        return text
    return (
        f"{text[:JSON_SHOWN]}\n… ({len(text) - JSON_SHOWN:,} more characters: the API has it all)"
    )


def count_of(value: str) -> int:
    """A count given in the address (``?n=3``): a small non-negative number, else 0."""
    return int(value) if value.isdigit() and len(value) < 7 else 0
