"""Usage: what the workspace used per day (runs, steps, store requests, e-mails, HTTP calls),
split by store or recipe if asked, today's usage against its daily limits. Read by the API's
own function (:func:`api.routes.usage.usage_page`); for admins, like ``GET /v1/usage``."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.console.auth import AdminVisitor
from api.console.pages.listing import PAGE_SIZE, link
from api.console.render import page
from api.deps import ClockDep, DatabaseDep
from api.pagination import Cursor
from api.routes.usage import By, usage_page
from engine import METRICS

router = APIRouter()
LABELS = {
    "runs": "Runs",
    "steps": "Steps",
    "store_requests": "Store requests",
    "emails": "E-mails",
    "http_calls": "HTTP calls",
}


def _day(value: str, label: str, problems: list[str]) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"{label}: “{value[:20]}” is not a day such as 2026-12-07.")
        return None


@router.get("/usage")
async def usage(
    request: Request,
    visitor: AdminVisitor,
    db: DatabaseDep,
    clock: ClockDep,
    since: Annotated[str, Query(max_length=20)] = "",
    until: Annotated[str, Query(max_length=20)] = "",
    by: Annotated[str, Query(max_length=10)] = "day",
    cursor: Cursor = None,
) -> Response:
    problems: list[str] = []
    split: By = "store" if by == "store" else "recipe" if by == "recipe" else "day"
    today = clock.now().date()
    last = _day(until, "Until", problems) or today
    first = _day(since, "Since", problems) or last - timedelta(days=29)
    if first > last or (last - first).days > 365:
        problems.append("Since must be on or before Until, at most 366 days apart.")
        first, last = today - timedelta(days=29), today
    shown = await db.query(
        lambda s: usage_page(
            s,
            visitor.workspace,
            first,
            last,
            by=split,
            limit=PAGE_SIZE,
            cursor=cursor,
            today=today,
        )
    )
    params = {"since": since, "until": until, "by": "" if split == "day" else split}
    limits = shown.limits.model_dump()
    return page(
        request,
        "usage.html",
        status_code=422 if problems else 200,
        title="Usage",
        problems=problems,
        shown=shown,
        by=split,
        since=first.isoformat(),
        until=last.isoformat(),
        metrics=[(m, LABELS[m]) for m in METRICS],
        today=[(LABELS[m], getattr(shown.today, m), limits.get(m)) for m in METRICS],
        older=link("/console/usage", **params, cursor=shown.next_cursor)
        if shown.next_cursor
        else "",
        newest=link("/console/usage", **params) if cursor else "",
    )
