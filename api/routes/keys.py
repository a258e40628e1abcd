"""API keys of the caller's workspace: create (the key is shown once; an agency key, or one
limited to some stores), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlmodel import select

from api.deps import ClockDep, DatabaseDep, RequireAdmin, SessionDep, key_cache
from api.errors import ApiError, invalid, not_found, responses
from api.keys import new_key, revoke
from api.models import KeyCreate, KeyCreated, KeyPublic, KeysPublic
from api.pagination import Cursor, Limit, newest_first
from api.tables import ApiKeyRow

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=responses(401, 403, 422))


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an API key")
def create_key(
    body: KeyCreate, caller: RequireAdmin, db: DatabaseDep, clock: ClockDep
) -> KeyCreated:
    if body.agency and (not caller.agency or caller.in_client):
        raise ApiError(
            403,
            "only an agency key, in its own workspace, creates agency keys",
            code="not_an_agency_key",
        )
    with db.session() as session:  # ended in this thread: no lock outlives the handler
        try:
            row, key = new_key(
                session,
                caller.workspace,
                list(body.scopes),
                body.name,
                clock.now(),
                agency=body.agency,
                stores=body.stores,
            )
        except ValueError as exc:
            raise invalid("/stores", str(exc)) from None
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
            revoke(session, row, clock.now())
            session.commit()
        cache = key_cache(request)
        cache.pop(row.key_hash, None)
        for slot in [s for s in cache if s.startswith(f"{row.id}/")]:
            cache.pop(slot, None)  # the workspaces an agency key was acting in
