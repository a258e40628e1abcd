"""Inbound hooks: URLs where outside systems send signed webhooks that start recipes.

``POST /v1/hooks`` creates one and shows its secret once; senders sign each message with it
the Standard Webhooks way and post it to ``/v1/hooks/{id}/events`` (no API key: the signature
stands in for one). See :mod:`connectors.http.inbound`.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from api.deps import (
    CipherDep,
    ClockDep,
    DatabaseDep,
    EngineDep,
    RequireWrite,
    SessionDep,
)
from api.errors import ApiError, not_found, responses
from api.models import EventAccepted, UtcDateTime
from api.pagination import Cursor, Limit, newest_first
from connectors.http.inbound import EVENT_TYPE, NAME_PATTERN, InboundHookRow
from connectors.http.signing import SignatureError, new_secret, verify
from engine import Cipher, Database, NewEvent, audit_change, new_id

log = logging.getLogger("sous.api.hooks")
router = APIRouter(prefix="/v1/hooks", tags=["hooks"], responses=responses(401, 403, 422))


class HookCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "warehouse"}]})
    name: Annotated[str, Field(pattern=NAME_PATTERN, description="used in `with: {hook: …}`")]


class HookPublic(BaseModel):
    id: str
    name: str
    url: str = Field(description="Where senders post, relative to this API")
    created_at: UtcDateTime


class HookCreated(HookPublic):
    secret: str = Field(description="The signing secret (whsec_…): shown only in this response")


class HooksPublic(BaseModel):
    data: list[HookPublic]
    next_cursor: str | None = None


def _public(row: InboundHookRow) -> HookPublic:
    return HookPublic(
        id=row.id, name=row.name, url=f"/v1/hooks/{row.id}/events", created_at=row.created_at
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an inbound hook",
    responses=responses(409),
)
def create_hook(
    body: HookCreate,
    caller: RequireWrite,
    db: DatabaseDep,
    cipher: CipherDep,
    clock: ClockDep,
) -> HookCreated:
    with db.session() as session:  # ended in this thread: no lock outlives the handler
        secret = new_secret()
        row = InboundHookRow(
            id=new_id("hk"),
            workspace_id=caller.workspace,
            name=body.name,
            secret_enc=cipher.encrypt(secret),
            created_at=clock.now(),
        )
        session.add(row)
        audit_change(
            session, caller.workspace, "hook", "created", row.id, row.created_at, summary=body.name
        )
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise ApiError(409, f"this workspace already has a hook named {body.name!r}") from None
        return HookCreated(**_public(row).model_dump(), secret=secret)


@router.get("", summary="List inbound hooks (never their secrets)")
def list_hooks(
    caller: RequireWrite, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> HooksPublic:
    query = select(InboundHookRow).where(InboundHookRow.workspace_id == caller.workspace)
    data, next_cursor = newest_first(session, query, InboundHookRow.id, limit, cursor)
    return HooksPublic(data=[_public(r) for r in data], next_cursor=next_cursor)


@router.delete(
    "/{hook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an inbound hook (its URL stops accepting messages)",
    responses=responses(404),
)
def delete_hook(hook_id: str, caller: RequireWrite, db: DatabaseDep, clock: ClockDep) -> Response:
    with db.session() as session:  # ended in this thread: no lock outlives the handler
        row = session.get(InboundHookRow, hook_id)
        if row is None or row.workspace_id != caller.workspace:
            raise not_found("hook", hook_id)
        session.delete(row)
        audit_change(
            session, caller.workspace, "hook", "deleted", row.id, clock.now(), summary=row.name
        )
        session.commit()
        return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{hook_id}/events",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Receive a signed webhook (no API key: Standard Webhooks signature)",
    description="Headers `webhook-id`, `webhook-timestamp` and `webhook-signature` "
    "(`v1,<base64 HMAC-SHA256 of id.timestamp.body>` under the hook's secret); the body is "
    "JSON. A message sent again with the same `webhook-id` is accepted once.",
    responses=responses(400, 404),
    openapi_extra={
        "security": [],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "description": "the sender's JSON object"},
                    "examples": {
                        "delay": {
                            "value": {"type": "shipment.delayed", "sku": "SUN-CATEYE"},
                        }
                    },
                }
            },
        },
    },
)
async def receive(
    hook_id: str,
    request: Request,
    engine: EngineDep,
    db: DatabaseDep,
    clock: ClockDep,
    cipher: CipherDep,
) -> EventAccepted:
    found = await _hook(db, cipher, hook_id)
    if found is None:
        raise not_found("hook", hook_id)
    row, secret = found
    body = await request.body()
    try:
        msg_id = verify(secret, request.headers, body, clock.now())
    except SignatureError as exc:
        log.warning("hook %s refused a message: %s", hook_id, exc)
        raise ApiError(401, str(exc)) from None
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("hook %s refused a message: the body is not JSON (%s)", hook_id, exc)
        raise ApiError(400, f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        log.warning("hook %s refused a message: the body is not a JSON object", hook_id)
        raise ApiError(400, "the body must be a JSON object")
    result = await engine.receive(
        NewEvent(
            type=EVENT_TYPE,
            payload={"hook": row.name, "webhook_id": msg_id, "body": data},
            workspace=row.workspace_id,
            source="webhook",
            dedup_key=f"hook:{row.id}:{msg_id}",
        )
    )
    return EventAccepted(event_id=result.event_id, duplicate=result.duplicate, runs=result.runs)


async def _hook(db: Database, cipher: Cipher, hook_id: str) -> tuple[InboundHookRow, str] | None:
    """The hook and its secret (read in a thread: this route runs on the event loop)."""

    def read() -> tuple[InboundHookRow, str] | None:
        with db.read_session() as session:
            row = session.get(InboundHookRow, hook_id)
        return None if row is None else (row, cipher.decrypt(row.secret_enc))

    return await run_in_threadpool(read)
