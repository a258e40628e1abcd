"""Reading events, for the API and the console: the filtered list newest first, one event with
the decision each recipe made about it, and a recipe's decisions about the latest events of its
trigger. Every query is scoped to a workspace."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from api.errors import not_found
from api.models import DecisionPublic, EventDetail, EventPublic
from api.pagination import newest_first, unindexed
from engine import EventRow, MatchRow, RecipeRow


def public_event(row: EventRow) -> EventPublic:
    return EventPublic.model_validate(row, from_attributes=True)


def events_page(
    session: Session,
    workspace: str,
    *,
    type: str | None = None,
    store: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
    cursor: str | None = None,
    stores: frozenset[str] | None = None,
) -> tuple[list[EventRow], str | None]:
    """One page of the workspace's events, newest first: of ``type``, from ``store``, received
    in ``[since, until)``; only from ``stores`` when given (a key limited to them)."""
    query = select(EventRow).where(EventRow.workspace_id == workspace)
    if stores is not None:
        query = query.where(col(EventRow.store).in_(sorted(stores)))
    if type is not None:
        query = query.where(EventRow.type == type)
    if store is not None:
        query = query.where(EventRow.store == store)
    if since is not None:
        query = query.where(unindexed(EventRow.received_at) >= since)
    if until is not None:
        query = query.where(unindexed(EventRow.received_at) < until)
    rows, next_cursor = newest_first(session, query, EventRow.id, limit, cursor)
    return list(rows), next_cursor


def event_detail(
    session: Session, workspace: str, event_id: str, stores: frozenset[str] | None = None
) -> EventDetail:
    """The event, its payload and every decision; 404 when ``workspace`` has no such event (or
    it is from none of ``stores``, when given)."""
    row = session.get(EventRow, event_id)
    hidden = stores is not None and row is not None and row.store not in stores
    if row is None or row.workspace_id != workspace or hidden:
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
    public = public_event(row)
    return EventDetail(**public.model_dump(), payload=row.payload or {}, decisions=decisions)


def recipe_decisions(
    session: Session, workspace: str, recipe_uid: str, trigger_type: str, limit: int
) -> list[tuple[EventRow, MatchRow | None]]:
    """The latest ``limit`` events of ``trigger_type``, newest first, each with the decision
    the recipe made about it (``None``: it was not considered, e.g. it did not exist yet)."""
    events = session.exec(
        select(EventRow)
        .where(EventRow.workspace_id == workspace, EventRow.type == trigger_type)
        .order_by(col(EventRow.id).desc())
        .limit(limit)
    ).all()
    if not events:
        return []
    matches = session.exec(
        select(MatchRow).where(
            col(MatchRow.event_id).in_([e.id for e in events]),
            MatchRow.recipe_uid == recipe_uid,
            MatchRow.workspace_id == workspace,
        )
    ).all()
    by_event = {m.event_id: m for m in matches}
    return [(event, by_event.get(event.id)) for event in events]
