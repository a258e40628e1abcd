"""The audit log of the caller's workspace: every change to its recipes, stores, keys, secrets,
packs, hooks and settings, newest first, filtered by kind, actor, target and time."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlmodel import Session, select

from api.deps import DatabaseDep, RequireAdmin
from api.errors import responses
from api.models import AuditEntry, AuditPage, UtcDateTime
from api.pagination import Cursor, Limit, newest_first, unindexed
from engine import AuditRow, Text

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=responses(401, 403, 422))
Kind = Annotated[
    Literal["recipe", "store", "key", "secret", "pack", "workspace", "hook", "approval"] | None,
    Query(description="recipe, store, key, secret, pack, workspace, hook or approval"),
]


def audit_page(
    session: Session,
    workspace: str,
    *,
    kind: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    since: object = None,
    until: object = None,
    limit: int = 50,
    cursor: str | None = None,
) -> AuditPage:
    """One page of ``workspace``'s audit log, newest first (for the API and the console)."""
    query = select(AuditRow).where(AuditRow.workspace_id == workspace)
    if kind is not None:
        query = query.where(AuditRow.kind == kind)
    if actor is not None:
        query = query.where(AuditRow.actor == actor)
    if target is not None:
        query = query.where(AuditRow.target == target)
    if since is not None:
        query = query.where(unindexed(AuditRow.at) >= since)
    if until is not None:
        query = query.where(unindexed(AuditRow.at) < until)
    rows, next_cursor = newest_first(session, query, AuditRow.id, limit, cursor)
    return AuditPage(
        data=[AuditEntry.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )


@router.get(
    "",
    summary="The audit log: who changed what, when",
    description="Every change to the workspace's recipes (with a diff), stores, keys, secrets "
    "(never their values), packs, hooks and settings, newest first. `actor` is `key:ID` for an "
    "API key, `console:key:ID` or `console:user:ID` for the console, `cli` or `system`; a "
    "change made with the `Sous-Reason` header keeps it. Entries older than the retention "
    "(`SOUS_RETENTION_AUDIT_DAYS`, 365 days by default) are deleted.",
)
async def list_audit(
    caller: RequireAdmin,
    db: DatabaseDep,
    kind: Kind = None,
    actor: Annotated[Text | None, Query(max_length=200, description="`key:ID`, …")] = None,
    target: Annotated[Text | None, Query(max_length=200, description="A recipe id, …")] = None,
    since: Annotated[UtcDateTime | None, Query(description="At or after")] = None,
    until: Annotated[UtcDateTime | None, Query(description="Before")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AuditPage:
    return await db.query(
        lambda s: audit_page(
            s,
            caller.workspace,
            kind=kind,
            actor=actor,
            target=target,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )
    )
