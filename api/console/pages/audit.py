"""The audit log: every change to the workspace's recipes, stores, keys, secrets, packs, hooks
and settings, newest first, by kind, who, what and time, each recipe change with its diff.
Read by the API's own function (:func:`api.routes.audit.audit_page`); for admins, like
``GET /v1/audit``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from api.console.auth import AdminVisitor
from api.console.pages.listing import PAGE_SIZE, link, when_given
from api.console.render import page
from api.deps import DatabaseDep
from api.pagination import Cursor
from api.routes.audit import audit_page

router = APIRouter()
KINDS = ("recipe", "store", "key", "secret", "pack", "workspace", "hook", "approval")


@dataclass(frozen=True)
class AuditFilters:
    kind: str = ""
    actor: str = ""
    target: str = ""
    since: str = ""
    until: str = ""


async def _filters(
    kind: Annotated[str, Query(max_length=20)] = "",
    actor: Annotated[str, Query(max_length=200)] = "",
    target: Annotated[str, Query(max_length=200)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
) -> AuditFilters:
    return AuditFilters(kind.strip(), actor.strip(), target.strip(), since.strip(), until.strip())


@router.get("/audit")
async def audit(
    request: Request,
    visitor: AdminVisitor,
    db: DatabaseDep,
    filters: Annotated[AuditFilters, Depends(_filters)],
    cursor: Cursor = None,
) -> Response:
    problems: list[str] = []
    since = when_given(filters.since, "Since", problems)
    until = when_given(filters.until, "Until", problems)
    kind = filters.kind if filters.kind in KINDS else None
    if filters.kind and kind is None:
        problems.append(f"Kind: “{filters.kind}” is not one of {', '.join(KINDS)}.")
    shown = await db.query(
        lambda s: audit_page(
            s,
            visitor.workspace,
            kind=kind,
            actor=filters.actor or None,
            target=filters.target or None,
            since=since,
            until=until,
            limit=PAGE_SIZE,
            cursor=cursor,
        )
    )
    params = asdict(filters)
    return page(
        request,
        "audit.html",
        status_code=422 if problems else 200,
        title="Audit log",
        problems=problems,
        filters=filters,
        kinds=KINDS,
        rows=shown.data,
        older=link("/console/audit", **params, cursor=shown.next_cursor)
        if shown.next_cursor
        else "",
        newest=link("/console/audit", **params) if cursor else "",
    )
