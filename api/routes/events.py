"""Events: send a custom one (stored before the answer), list, and show with the decision each
recipe made about it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import (
    CurrentKey,
    DatabaseDep,
    EngineDep,
    RegistryDep,
    RequireWrite,
    store_aware,
)
from api.errors import ApiError, invalid, responses
from api.events_query import event_detail, events_page, public_event
from api.models import EventAccepted, EventCreate, EventDetail, EventsPublic, UtcDateTime
from api.pagination import Cursor, Limit
from engine import NewEvent, RegistryError, Text

router = APIRouter(prefix="/v1/events", tags=["events"], responses=responses(401, 403, 422))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send an event",
    responses=responses(429),
)
async def send_event(
    body: EventCreate, caller: RequireWrite, engine: EngineDep, registry: RegistryDep
) -> EventAccepted:
    today = engine.clock.now().date().isoformat()
    refused = engine.runner.limits.reached(caller.workspace, today, ("runs",))
    if refused is not None:
        raise ApiError(429, refused, code="usage_limit_reached")
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
@store_aware
async def list_events(
    caller: CurrentKey,
    db: DatabaseDep,
    type: Annotated[Text | None, Query(max_length=120)] = None,
    store: Annotated[Text | None, Query(max_length=64)] = None,
    since: Annotated[UtcDateTime | None, Query(description="Received at or after")] = None,
    until: Annotated[UtcDateTime | None, Query(description="Received before")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> EventsPublic:
    data, next_cursor = await db.query(
        lambda s: events_page(
            s,
            caller.workspace,
            type=type,
            store=store,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
            stores=caller.stores,
        )
    )
    return EventsPublic(data=[public_event(r) for r in data], next_cursor=next_cursor)


@router.get(
    "/{event_id}", summary="Show an event and its match decisions", responses=responses(404)
)
@store_aware
async def show_event(event_id: str, caller: CurrentKey, db: DatabaseDep) -> EventDetail:
    return await db.query(lambda s: event_detail(s, caller.workspace, event_id, caller.stores))
