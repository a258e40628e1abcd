"""Workspaces: the caller's own (``/v1/workspace``), and an agency's client workspaces
(``/v1/workspaces``): create, list, show, rename, archive, and set their usage limits.

An agency key (``agency: true``) lists and creates client workspaces, and acts in one by
naming it in the ``Sous-Workspace`` header; any other key sees only its own workspace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from sqlalchemy import delete, func
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from api.deps import (
    ClockDep,
    ContainerDep,
    CurrentKey,
    DatabaseDep,
    RequireAdmin,
    SessionDep,
    WorkspaceDep,
    key_cache,
)
from api.errors import ApiError, not_found, responses
from api.keys import Caller, workspace_id
from api.models import (
    WorkspaceCreate,
    WorkspaceLimits,
    WorkspacePatch,
    WorkspacePublic,
    WorkspacesPublic,
    WorkspaceUpdate,
)
from api.pagination import Cursor, Limit, page
from api.tables import ConsoleSessionRow
from engine import RecipeRow, StoreRow, Workspace, audit_change
from sous.container import Container

router = APIRouter(prefix="/v1/workspace", tags=["workspace"], responses=responses(401, 403, 422))
agency_router = APIRouter(
    prefix="/v1/workspaces", tags=["workspace"], responses=responses(401, 403, 422)
)
WorkspaceId = Annotated[str, Path(max_length=64, description="The workspace's id")]


def _count(session: Session, table: type[RecipeRow] | type[StoreRow], workspace: str) -> int:
    query = select(func.count()).select_from(table).where(col(table.workspace_id) == workspace)
    return int(session.exec(query).one())


def _public(session: Session, workspace: str) -> WorkspacePublic:
    row = session.get(Workspace, workspace)
    return WorkspacePublic(
        id=workspace,
        name=row.name if row else workspace,
        created_at=row.created_at if row else None,
        recipes=_count(session, RecipeRow, workspace),
        stores=_count(session, StoreRow, workspace),
        agency=row.agency_id if row else None,
        archived_at=row.archived_at if row else None,
        limits=WorkspaceLimits.model_validate((row.limits if row else None) or {}),
    )


@router.get("", summary="The caller's workspace")
def show_workspace(workspace: WorkspaceDep, session: SessionDep) -> WorkspacePublic:
    return _public(session, workspace)


@router.patch("", summary="Rename the caller's workspace")
def rename_workspace(
    body: WorkspaceUpdate, caller: RequireAdmin, db: DatabaseDep, clock: ClockDep
) -> WorkspacePublic:
    with db.session() as session:  # ended in this thread: no lock outlives the handler
        row = session.get(Workspace, caller.workspace)
        if row is None:
            row = Workspace(id=caller.workspace, name=body.name, created_at=clock.now())
        before, row.name = row.name, body.name
        session.add(row)
        summary = f"renamed {before!r} → {body.name!r}"
        audit_change(session, row.id, "workspace", "renamed", row.id, clock.now(), summary=summary)
        session.commit()
        return _public(session, caller.workspace)


def _agency(caller: Caller) -> str:
    """The agency an agency key acting in its own workspace speaks for (403 for other keys)."""
    if not caller.agency or caller.in_client:
        raise ApiError(
            403,
            "only an agency key, in its own workspace (without Sous-Workspace), "
            "manages client workspaces",
            code="not_an_agency_key",
        )
    return caller.home


def _visible(session: Session, caller: Caller, workspace: str) -> Workspace:
    """A workspace the caller may see: its own, or (an agency key) one of its clients."""
    row = session.get(Workspace, workspace)
    mine = workspace == caller.workspace or (
        caller.agency and row is not None and row.agency_id == caller.home
    )
    if row is None or not mine:
        raise not_found("workspace", workspace)
    return row


@agency_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a client workspace (an agency key)",
    responses=responses(409),
)
def create_workspace(
    body: WorkspaceCreate, caller: RequireAdmin, db: DatabaseDep, clock: ClockDep
) -> WorkspacePublic:
    agency = _agency(caller)
    ident = body.id or workspace_id(body.name)
    limits = body.limits.model_dump(exclude_none=True) if body.limits else None
    with db.session() as session:
        if session.get(Workspace, ident) is not None:
            raise ApiError(409, f"the workspace id {ident!r} is taken: give another id")
        row = Workspace(
            id=ident, name=body.name, created_at=clock.now(), agency_id=agency, limits=limits
        )
        session.add(row)
        summary = f"client workspace {body.name!r} of {agency}"
        audit_change(session, ident, "workspace", "created", ident, row.created_at, summary=summary)
        audit_change(
            session, agency, "workspace", "created", ident, row.created_at, summary=summary
        )
        session.commit()
        return _public(session, ident)


@agency_router.get("", summary="List workspaces: an agency key's own and its clients'")
def list_workspaces(
    caller: CurrentKey,
    session: SessionDep,
    archived: bool = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> WorkspacesPublic:
    query = select(Workspace)
    if caller.agency and not caller.in_client:
        query = query.where(
            (col(Workspace.agency_id) == caller.home) | (col(Workspace.id) == caller.home)
        )
    else:
        query = query.where(col(Workspace.id) == caller.workspace)
    if not archived:
        query = query.where(col(Workspace.archived_at).is_(None))
    if cursor:
        query = query.where(col(Workspace.id) > cursor)
    rows = session.exec(query.order_by(col(Workspace.id)).limit(limit + 1)).all()
    data, next_cursor = page(rows, limit, lambda r: r.id)
    return WorkspacesPublic(data=[_public(session, r.id) for r in data], next_cursor=next_cursor)


@agency_router.get("/{workspace_id}", summary="Show a workspace", responses=responses(404))
def show_one(workspace_id: WorkspaceId, caller: CurrentKey, session: SessionDep) -> WorkspacePublic:
    return _public(session, _visible(session, caller, workspace_id).id)


@agency_router.patch(
    "/{workspace_id}",
    summary="Rename, archive or unarchive a workspace, or set its limits",
    description="Archiving a client workspace disables its recipes (reason: archived), stops "
    "its own keys and refuses `Sous-Workspace` for it; unarchiving lets keys in again (recipes "
    "stay disabled until enabled). Only an agency key archives, and sets limits.",
    responses=responses(404),
)
async def update_workspace(
    workspace_id: WorkspaceId,
    body: WorkspacePatch,
    caller: RequireAdmin,
    request: Request,
    container: ContainerDep,
) -> WorkspacePublic:
    return await patch_workspace(container, request, caller, workspace_id, body)


async def patch_workspace(
    container: Container, request: Request, caller: Caller, workspace: str, body: WorkspacePatch
) -> WorkspacePublic:
    """Rename, archive or unarchive ``workspace``, or set its limits, as ``caller`` (the API's
    route and the console's Workspaces page): refusals are :class:`~api.errors.ApiError`."""
    shown, disabled = await run_in_threadpool(_patch, container, caller, workspace, body)
    for slug in disabled:
        container.engine.refresh(container.engine.recipes.get(workspace, slug))
    if body.archived is not None:
        key_cache(request).clear()  # its keys stop (or start) working at once
    return shown


def _patch(
    container: Container, caller: Caller, workspace: str, body: WorkspacePatch
) -> tuple[WorkspacePublic, list[str]]:
    with container.db.session() as session:
        row = _visible(session, caller, workspace)
        if (body.archived is not None or body.limits is not None) and _agency(caller) == workspace:
            raise ApiError(422, "an agency cannot archive or limit its own workspace")
        archiving = body.archived is True and row.archived_at is None
        now = container.clock.now()
        changes = []
        if body.name is not None:
            changes.append(f"renamed {row.name!r} → {body.name!r}")
            row.name = body.name
        if body.archived is not None:
            changes.append("archived" if body.archived else "unarchived")
            row.archived_at = now if body.archived else None
        if body.limits is not None:
            row.limits = body.limits.model_dump(exclude_none=True) or None
            changes.append(f"limits {row.limits or 'none'}")
        session.add(row)
        action = "archived" if archiving else "updated"
        summary = "; ".join(changes)
        audit_change(session, workspace, "workspace", action, workspace, now, summary=summary)
        if archiving:  # its console sessions end with it
            session.exec(
                delete(ConsoleSessionRow).where(col(ConsoleSessionRow.workspace_id) == workspace)
            )
        session.commit()
    disabled: list[str] = []
    if archiving:
        for stored in container.engine.recipes.list(workspace, enabled=True):
            container.engine.recipes.set_enabled(
                workspace, stored.recipe.id, False, "the workspace was archived"
            )
            disabled.append(stored.recipe.id)
    with container.db.read_session() as session:
        return _public(session, workspace), disabled
