"""Events: send a custom one (stored before the answer), list, and show with the decision each
recipe made about it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlmodel import Session, col, select

from api.deps import DatabaseDep, EngineDep, RegistryDep, RequireWrite, WorkspaceDep
from api.errors import invalid, not_found, responses
from api.models import (
    DecisionPublic,
    EventAccepted,
    EventCreate,
    EventDetail,
    EventPublic,
    EventsPublic,
    UtcDateTime,
)
from api.pagination import Cursor, Limit, newest_first
from engine import EventRow, MatchRow, NewEvent, RecipeRow, RegistryError, Text

router = APIRouter(prefix="/v1/events", tags=["events"], responses=responses(401, 403, 422))


@router.post("", status_code=status.HTTP_202_ACCEPTED, summary="Send an event")
async def send_event(
    body: EventCreate, caller: RequireWrite, engine: EngineDep, registry: RegistryDep
) -> EventAccepted:
    try:
        registry.trigger(body.type)
    except RegistryError:
        raise invalid(
            "/type", f"no trigger accepts {body.type!r}; custom events are custom.<name>"
        ) from None
    new = NewEvent(
        type=body.type,
        payload=body.payload,
        workspace=caller.workspace,
        store=body.store,
        source="api",
        dedup_key=body.dedup_key,
        occurred_at=body.occurred_at,
    )
    result = await engine.receive(new)
    return EventAccepted(event_id=result.event_id, duplicate=result.duplicate, runs=result.runs)


@router.get("", summary="List events, newest first")
async def list_events(
    workspace: WorkspaceDep,
    db: DatabaseDep,
    type: Annotated[Text | None, Query(max_length=120)] = None,
    store: Annotated[Text | None, Query(max_length=64)] = None,
    since: Annotated[UtcDateTime | None, Query(description="Received at or after")] = None,
    until: Annotated[UtcDateTime | None, Query(description="Received before")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> EventsPublic:
    query = select(EventRow).where(EventRow.workspace_id == workspace)
    if type is not None:
        query = query.where(EventRow.type == type)
    if store is not None:
        query = query.where(EventRow.store == store)
    if since is not None:
        query = query.where(EventRow.received_at >= since)
    if until is not None:
        query = query.where(EventRow.received_at < until)
    data, next_cursor = await db.query(lambda s: newest_first(s, query, EventRow.id, limit, cursor))
    return EventsPublic(
        data=[EventPublic.model_validate(r, from_attributes=True) for r in data],
        next_cursor=next_cursor,
    )


@router.get(
    "/{event_id}", summary="Show an event and its match decisions", responses=responses(404)
)
async def show_event(event_id: str, workspace: WorkspaceDep, db: DatabaseDep) -> EventDetail:
    return await db.query(lambda s: _event_detail(s, workspace, event_id))


def _event_detail(session: Session, workspace: str, event_id: str) -> EventDetail:
    row = session.get(EventRow, event_id)
    if row is None or row.workspace_id != workspace:
        raise not_found("event", event_id)
    found = session.exec(
        select(MatchRow, RecipeRow.slug)
        .join(RecipeRow, col(RecipeRow.uid) == col(MatchRow.recipe_uid), isouter=True)
        .where(MatchRow.event_id == event_id, MatchRow.workspace_id == workspace)
        .order_by(col(MatchRow.recipe_uid))
    ).all()
    decisions = [
        DecisionPublic(**match.model_dump(exclude={"event_id", "workspace_id"}), recipe_id=slug)
        for match, slug in found
    ]
    public = EventPublic.model_validate(row, from_attributes=True)
    return EventDetail(**public.model_dump(), payload=row.payload or {}, decisions=decisions)
