"""Connected BigCommerce stores: connect (verified, token encrypted), list, show with health,
disconnect."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, status
from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from api.connect import (
    base_url_for,
    finish_soon,
    new_webhook_secret,
    register_webhooks,
    verify,
)
from api.deps import (
    CipherDep,
    ClockDep,
    CurrentKey,
    DatabaseDep,
    RequireAdmin,
    SandboxDep,
    SessionDep,
    SettingsDep,
    StoresDep,
    store_aware,
)
from api.errors import ApiError, not_found, responses
from api.models import StoreCreate, StoreDetail, StoreHealth, StorePublic, StoresPublic
from api.pagination import Cursor, Limit, newest_first
from engine import EventRow, StoreRow, audit_change, new_id

router = APIRouter(prefix="/v1/stores", tags=["stores"], responses=responses(401, 403, 422))
_KEPT = ("id", "name", "domain", "secure_url", "plan_name", "plan_level", "currency", "timezone")


def _find(session: Session, workspace: str, store: str) -> StoreRow:
    row = session.exec(
        select(StoreRow).where(
            StoreRow.workspace_id == workspace,
            or_(col(StoreRow.id) == store, col(StoreRow.store_hash) == store),
        )
    ).first()
    if row is None:
        raise not_found("store", store)
    return row


def _public(row: StoreRow) -> StorePublic:
    return StorePublic.model_validate(row, from_attributes=True)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Connect a store",
    description=(
        "Verifies the access token by calling the store, keeps it encrypted and registers the "
        "store's webhooks. Registration is paced by the store's API quota; if it has not "
        "finished within a few seconds the answer's `status` is `webhooks_pending` and it "
        "goes on in the background: the store's `status` becomes `active` (or "
        "`webhooks_failed`) when it ends. 502: the store could not be reached (or its quota "
        "was used up) while verifying the token."
    ),
    responses=responses(409, 502),
)
async def connect_store(
    body: StoreCreate,
    caller: RequireAdmin,
    clock: ClockDep,
    db: DatabaseDep,
    settings: SettingsDep,
    stores: StoresDep,
    sandbox: SandboxDep,
    cipher: CipherDep,
) -> StorePublic:
    base = base_url_for(body.store_hash, body.api_base_url, settings, sandbox)
    await run_in_threadpool(_refuse_taken, db.read_session, caller.workspace, body.store_hash)
    info = await verify(body.store_hash, body.access_token, base, clock, sandbox)
    secret = new_webhook_secret()
    row = StoreRow(
        id=new_id("sto"),
        workspace_id=caller.workspace,
        store_hash=body.store_hash,
        name=body.name or str(info.get("name") or body.store_hash),
        api_base_url=base,
        access_token_enc=cipher.encrypt(body.access_token),
        webhook_secret_enc=cipher.encrypt(secret),
        created_at=clock.now(),
        info={"store": {k: info[k] for k in _KEPT if k in info}},
    )
    await run_in_threadpool(_insert, db.session, row)

    async def save_late(store_id: str, status: str, info: dict[str, Any]) -> None:
        await run_in_threadpool(_update, db.session, store_id, status, info)

    if await register_webhooks(stores, row, body.access_token, secret, save_late):
        await run_in_threadpool(_save, db.session, row)
    return _public(row)


def _refuse_taken(session_factory: Any, workspace: str, store_hash: str) -> None:
    with session_factory() as s:
        taken = s.exec(
            select(StoreRow.id).where(
                StoreRow.workspace_id == workspace, StoreRow.store_hash == store_hash
            )
        ).first()
    if taken is not None:
        raise ApiError(409, f"store {store_hash!r} is already connected")


def _insert(session_factory: Any, row: StoreRow) -> None:
    with session_factory() as s:
        s.add(row)
        _audit(s, row, "connected")
        try:
            s.commit()
        except IntegrityError:
            raise ApiError(409, f"store {row.store_hash!r} is already connected") from None


def _save(session_factory: Any, row: StoreRow) -> None:
    with session_factory() as s:
        s.merge(row)
        s.commit()


def _audit(session: Session, row: StoreRow, action: str) -> None:
    summary = row.name or row.store_hash
    at = row.created_at
    audit_change(session, row.workspace_id, "store", action, row.store_hash, at, summary=summary)


def _update(session_factory: Any, store_id: str, status: str, info: dict[str, Any]) -> None:
    """A late registration's outcome; a store disconnected meanwhile stays disconnected."""
    with session_factory() as s:
        row = s.get(StoreRow, store_id)
        if row is not None:
            row.status, row.info = status, info
            s.add(row)
            s.commit()


@router.get("", summary="List connected stores")
@store_aware
def list_stores(
    caller: CurrentKey, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> StoresPublic:
    query = select(StoreRow).where(StoreRow.workspace_id == caller.workspace)
    if caller.stores is not None:
        query = query.where(col(StoreRow.store_hash).in_(sorted(caller.stores)))
    data, next_cursor = newest_first(session, query, StoreRow.id, limit, cursor)
    return StoresPublic(data=[_public(r) for r in data], next_cursor=next_cursor)


@router.get("/{store}", summary="Show a store and its health", responses=responses(404))
@store_aware
async def show_store(
    store: str, caller: CurrentKey, db: DatabaseDep, stores: StoresDep
) -> StoreDetail:
    workspace = caller.workspace
    row, last_event = await run_in_threadpool(_with_last_event, db.read_session, workspace, store)
    if not caller.sees(row.store_hash):
        raise not_found("store", store)
    found = stores.health(workspace, row.store_hash) if stores else None
    details: dict[str, Any] = dict(found) if isinstance(found, dict) else {}
    active, expected = details.pop("hooks_active", None), details.pop("hooks_expected", None)
    health = StoreHealth(
        last_event_at=row.last_event_at or last_event,
        hooks_active=active,
        hooks_expected=expected,
        hooks_ok=None if active is None or expected is None else active >= expected,
        quota=details.pop("quota", None),
        details=details,
    )
    return StoreDetail(**_public(row).model_dump(), health=health)


def _with_last_event(session_factory: Any, workspace: str, store: str) -> tuple[StoreRow, Any]:
    with session_factory() as s:
        row = _find(s, workspace, store)
        last = s.exec(
            select(func.max(EventRow.received_at)).where(
                EventRow.workspace_id == workspace, EventRow.store == row.store_hash
            )
        ).one()
        return row, last


@router.delete(
    "/{store}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Disconnect a store",
    responses=responses(404),
)
async def disconnect_store(
    store: str, caller: RequireAdmin, db: DatabaseDep, stores: StoresDep, clock: ClockDep
) -> None:
    # Unregister first: removing the store's hooks needs its client, built from the row.
    read = db.read_session
    store_hash = await run_in_threadpool(_hash_of, read, caller.workspace, store)
    if stores is not None:
        # Deleting the hooks is paced by the store's quota like registering them: the answer
        # does not wait for a used-up quota's window; the deletes go on in the background.
        await finish_soon(stores.unregister(workspace=caller.workspace, store_hash=store_hash))
    await run_in_threadpool(_delete, db.session, caller.workspace, store, clock.now())


def _hash_of(session_factory: Any, workspace: str, store: str) -> str:
    with session_factory() as s:
        return _find(s, workspace, store).store_hash


def _delete(session_factory: Any, workspace: str, store: str, now: datetime) -> str:
    with session_factory() as s:
        row = _find(s, workspace, store)
        s.delete(row)
        audit_change(s, workspace, "store", "disconnected", row.store_hash, now)
        s.commit()
        return row.store_hash
