"""API keys of the caller's workspace: create (the key is shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlmodel import select

from api.deps import ClockDep, DatabaseDep, RequireAdmin, SessionDep, key_cache
from api.errors import not_found, responses
from api.keys import new_key
from api.models import KeyCreate, KeyCreated, KeyPublic, KeysPublic
from api.pagination import Cursor, Limit, newest_first
from api.tables import ApiKeyRow

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=responses(401, 403, 422))


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an API key")
def create_key(
    body: KeyCreate, caller: RequireAdmin, db: DatabaseDep, clock: ClockDep
) -> KeyCreated:
    with db.session() as session:  # ended in this thread: no lock outlives the handler
        row, key = new_key(session, caller.workspace, list(body.scopes), body.name, clock.now())
        session.commit()
        return KeyCreated(
            **KeyPublic.model_validate(row, from_attributes=True).model_dump(), key=key
        )


@router.get("", summary="List API keys (never the keys themselves)")
def list_keys(
    caller: RequireAdmin, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> KeysPublic:
    query = select(ApiKeyRow).where(ApiKeyRow.workspace_id == caller.workspace)
    data, next_cursor = newest_first(session, query, ApiKeyRow.id, limit, cursor)
    return KeysPublic(
        data=[KeyPublic.model_validate(r, from_attributes=True) for r in data],
        next_cursor=next_cursor,
    )


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key",
    responses=responses(404),
)
def revoke_key(
    key_id: str,
    request: Request,
    caller: RequireAdmin,
    db: DatabaseDep,
    clock: ClockDep,
) -> None:
    with db.session() as session:  # ended in this thread: no lock outlives the handler
        row = session.get(ApiKeyRow, key_id)
        if row is None or row.workspace_id != caller.workspace:
            raise not_found("API key", key_id)
        if row.revoked_at is None:
            row.revoked_at = clock.now()
            session.add(row)
            session.commit()
        key_cache(request).pop(row.key_hash, None)
