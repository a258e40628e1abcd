"""Events: the list newest first (by type, store and time), updated live, and an event's page
with its payload and the decision every recipe made about it (matched, or at which stage and
why not, with the run it started). Read by the API's own functions (:mod:`api.events_query`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from api.console.auth import VisitorDep
from api.console.pages.listing import LIVE_HINT, PAGE_SIZE, as_json, link, when_given
from api.console.render import page, render
from api.deps import DatabaseDep
from api.events_query import event_detail, events_page
from api.pagination import Cursor
from engine import Database, EventRow

router = APIRouter()

EventId = Annotated[str, Path(max_length=40)]


@dataclass(frozen=True)
class EventFilters:
    type: str = ""
    store: str = ""
    since: str = ""
    until: str = ""


async def _filters(
    type: Annotated[str, Query(max_length=120)] = "",
    store: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
) -> EventFilters:
    return EventFilters(type.strip(), store.strip(), since.strip(), until.strip())


FiltersDep = Annotated[EventFilters, Depends(_filters)]


async def _read(
    db: Database, workspace: str, filters: EventFilters, cursor: str | None
) -> tuple[list[EventRow], str | None, list[str]]:
    problems: list[str] = []
    since = when_given(filters.since, "Since", problems)
    until = when_given(filters.until, "Until", problems)
    rows, next_cursor = await db.query(
        lambda s: events_page(
            s,
            workspace,
            type=filters.type or None,
            store=filters.store or None,
            since=since,
            until=until,
            limit=PAGE_SIZE,
            cursor=cursor,
        )
    )
    return rows, next_cursor, problems


@router.get("/events")
async def events_list(
    request: Request,
    visitor: VisitorDep,
    db: DatabaseDep,
    filters: FiltersDep,
    cursor: Cursor = None,
) -> Response:
    rows, next_cursor, problems = await _read(db, visitor.workspace, filters, cursor)
    params = asdict(filters)
    return page(
        request,
        "events.html",
        status_code=422 if problems else 200,
        title="Events",
        filters=filters,
        rows=rows,
        problems=problems,
        live=link("/console/events/rows", **params) if cursor is None else "",
        live_hint=LIVE_HINT,
        older=link("/console/events", **params, cursor=next_cursor) if next_cursor else "",
        newest=link("/console/events", **params) if cursor else "",
    )


@router.get("/events/rows")
async def events_rows(
    request: Request, visitor: VisitorDep, db: DatabaseDep, filters: FiltersDep
) -> Response:
    """The list's first page of rows alone, for live updates."""
    rows, _, _ = await _read(db, visitor.workspace, filters, None)
    return HTMLResponse(render(request, "events_rows.html", rows=rows))


@router.get("/events/{event_id}")
async def event_page(
    request: Request, event_id: EventId, visitor: VisitorDep, db: DatabaseDep
) -> Response:
    event = await db.query(lambda s: event_detail(s, visitor.workspace, event_id))
    decisions = sorted(event.decisions, key=lambda d: (not d.matched, d.recipe_id or ""))
    return page(
        request,
        "events_detail.html",
        title=f"Event {event.id}",
        event=event,
        decisions=decisions,
        matched=sum(1 for d in decisions if d.matched),
        as_json=as_json,
    )
