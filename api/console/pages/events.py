"""Events: the list newest first (by type, store and time), updated live, and an event's page
with its payload and the decision every recipe made about it (matched, or at which stage and
why not, with the run it started). The list is read by the API's own function
(:mod:`api.events_query`); the page bounds the decisions it lists (the API gives them all)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import func
from sqlmodel import Session, col, select

from api.console.auth import VisitorDep
from api.console.pages.listing import LIVE_HINT, PAGE_SIZE, as_json, link, when_given
from api.console.render import page, render
from api.deps import DatabaseDep
from api.errors import not_found
from api.events_query import events_page, public_event
from api.models import DecisionPublic
from api.pagination import Cursor
from engine import Database, EventRow, MatchRow, RecipeRow

router = APIRouter()

EventId = Annotated[str, Path(max_length=40)]
DECISIONS_SHOWN = 50
"""Decisions an event's page lists (an event can be weighed by every recipe of its trigger)."""


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


@dataclass(frozen=True)
class Decisions:
    """An event's decisions, bounded: the first :data:`DECISIONS_SHOWN` (those that started a
    run first, then by recipe id) and how many there are of each outcome."""

    shown: list[DecisionPublic]
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _decisions(session: Session, workspace: str, event_id: str) -> Decisions:
    where = (col(MatchRow.event_id) == event_id, col(MatchRow.workspace_id) == workspace)
    counted = session.exec(
        select(MatchRow.matched, MatchRow.stage, func.count())
        .where(*where)
        .group_by(col(MatchRow.matched), col(MatchRow.stage))
    ).all()
    found = session.connection().execute(
        sa.select(
            col(MatchRow.recipe_uid),
            col(RecipeRow.slug),
            col(MatchRow.recipe_version),
            col(MatchRow.matched),
            col(MatchRow.stage),
            col(MatchRow.reason),
            col(MatchRow.run_id),
        )
        .join(RecipeRow, col(RecipeRow.uid) == col(MatchRow.recipe_uid), isouter=True)
        .where(*where)
        .order_by(col(MatchRow.matched).desc(), col(RecipeRow.slug), col(MatchRow.recipe_uid))
        .limit(DECISIONS_SHOWN)
    )
    shown = [
        DecisionPublic(
            recipe_uid=uid,
            recipe_id=slug,
            recipe_version=version,
            matched=matched,
            stage=stage,
            reason=reason,
            run_id=run_id,
        )
        for uid, slug, version, matched, stage, reason, run_id in found
    ]
    counts = {"matched" if matched else stage: n for matched, stage, n in counted}
    return Decisions(shown, counts)


def _event(session: Session, workspace: str, event_id: str) -> tuple[EventRow, Decisions]:
    row = session.get(EventRow, event_id)
    if row is None or row.workspace_id != workspace:
        raise not_found("event", event_id)
    return row, _decisions(session, workspace, event_id)


@router.get("/events/{event_id}")
async def event_page(
    request: Request, event_id: EventId, visitor: VisitorDep, db: DatabaseDep
) -> Response:
    row, decisions = await db.query(lambda s: _event(s, visitor.workspace, event_id))
    return page(
        request,
        "events_detail.html",
        title=f"Event {row.id}",
        event=public_event(row),
        payload=row.payload or {},
        decisions=decisions,
        as_json=as_json,
    )
