"""Workspaces: an agency key's session lists the agency's workspace and its clients' (with
their recipes, stores and usage today) and opens any of them — the console then shows that
workspace, as the API does for the ``Sous-Workspace`` header. Other sessions see their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import RedirectResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.console.auth import (
    COOKIE,
    Opened,
    Visitor,
    VisitorDep,
    close_session,
    open_session,
    set_session_cookie,
)
from api.console.render import PageError, page
from api.deps import ContainerDep, SessionDep
from api.keys import clients
from api.routes.workspaces import _public
from api.tables import ApiKeyRow
from engine import Workspace
from sous.container import Container

router = APIRouter()


def _agency_of(session: Session, visitor: Visitor) -> str | None:
    """The agency whose key opened this session (``None``: not an agency key)."""
    if visitor.key_id is None:
        return None
    key = session.get(ApiKeyRow, visitor.key_id)
    return key.workspace_id if key is not None and key.agency else None


@router.get("/workspaces")
def workspaces(request: Request, visitor: VisitorDep, session: SessionDep) -> Response:
    agency = _agency_of(session, visitor)
    ids = [visitor.workspace]
    if agency is not None:
        ids = [agency] + [w.id for w in clients(session, agency)]
    rows = [_public(session, ident) for ident in ids]
    return page(
        request,
        "workspaces.html",
        title="Workspaces",
        rows=rows,
        agency=agency,
        current=visitor.workspace,
    )


def _reopen(container: Container, visitor: Visitor, token: str, target: str) -> Opened:
    with container.db.read_session() as session:
        agency = _agency_of(session, visitor)
        found = session.get(Workspace, target)
    mine = found is not None and (
        target == agency or (found.agency_id == agency and found.archived_at is None)
    )
    if agency is None or not mine:
        raise PageError(404, "No such workspace", f"This session cannot open “{target}”.")
    close_session(container.db, token)
    return open_session(
        container.db,
        target,
        scopes=sorted(visitor.scopes),
        key_id=visitor.key_id,
        now=container.clock.now(),
    )


@router.post("/workspaces/{workspace_id}/open")
async def open_workspace(
    workspace_id: Annotated[str, Path(max_length=64)],
    request: Request,
    visitor: VisitorDep,
    container: ContainerDep,
) -> Response:
    token = request.cookies.get(COOKIE, "")
    opened = await run_in_threadpool(_reopen, container, visitor, token, workspace_id)
    response = RedirectResponse("/console/", status_code=303)
    set_session_cookie(response, request, opened)
    return response
