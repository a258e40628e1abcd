"""Workspaces: an agency key's session lists the agency's workspace and its clients' (with
their recipes, stores and limits) and opens any of them — the console then shows that
workspace, as the API does for the ``Sous-Workspace`` header. Other sessions see their own.

An agency session with the admin scope also creates client workspaces, renames them, archives
and unarchives them and sets their daily usage limits, through the API's own functions
(:mod:`api.routes.workspaces`): the same checks, the same audit entries. A session reaches the
workspaces of its key's agency only, whichever workspace it has open."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.console.auth import (
    COOKIE,
    AdminVisitor,
    Opened,
    Visitor,
    VisitorDep,
    close_session,
    open_session,
    set_session_cookie,
)
from api.console.forms import Form, read_form
from api.console.pages.listing import done
from api.console.render import PageError, page
from api.deps import ContainerDep, SessionDep
from api.errors import ApiError
from api.keys import Caller, clients
from api.models import WorkspaceCreate, WorkspacePatch
from api.routes.workspaces import _public, create_workspace, patch_workspace
from api.tables import ApiKeyRow
from engine import METRICS, Database, Workspace
from sous.container import Container

router = APIRouter()
WorkspaceId = Annotated[str, Path(max_length=64)]
DONE = {
    "created": "The client workspace is created: open it to add its stores and recipes.",
    "updated": "The workspace is changed.",
    "archived": "The workspace is archived: its recipes are disabled and its keys stopped.",
}


def _agency_of(session: Session, visitor: Visitor) -> str | None:
    """The agency whose key opened this session (``None``: not an agency key)."""
    if visitor.key_id is None:
        return None
    key = session.get(ApiKeyRow, visitor.key_id)
    return key.workspace_id if key is not None and key.agency else None


def agency_caller(session: Session, visitor: Visitor, workspace: str | None = None) -> Caller:
    """The API's caller this session stands for, in ``workspace`` (default: the one it has
    open): an agency key's session is its agency key (``home``: the agency), as with the
    ``Sous-Workspace`` header; any other session is the key or user it was opened with."""
    agency = _agency_of(session, visitor)
    if agency is None:
        return visitor.caller
    return Caller(
        visitor.key_id or "",
        workspace or visitor.workspace,
        visitor.scopes,
        home=agency,
        agency=True,
    )


def _page(
    request: Request,
    visitor: Visitor,
    session: Session,
    *,
    errors: dict[str, str] | None = None,
    target: str = "",
    kept: Form | None = None,
    status_code: int = 200,
) -> Response:
    agency = _agency_of(session, visitor)
    ids = [visitor.workspace]
    if agency is not None:
        ids = [agency] + [w.id for w in clients(session, agency, archived=True)]
    rows = [_public(session, ident) for ident in ids]
    return page(
        request,
        "workspaces.html",
        status_code=status_code,
        title="Workspaces",
        rows=rows,
        agency=agency,
        current=visitor.workspace,
        manage=agency is not None and visitor.can("admin"),
        metrics=METRICS,
        errors=errors or {},
        target=target,
        kept=kept or Form([]),
        done=DONE.get(request.query_params.get("done", ""), ""),
    )


@router.get("/workspaces")
def workspaces(request: Request, visitor: VisitorDep, session: SessionDep) -> Response:
    return _page(request, visitor, session)


def _limits(form: Form) -> dict[str, str]:
    """The limits typed in (``limit_METRIC``; an empty field is no limit)."""
    typed = {m: form.get(f"limit_{m}").strip() for m in METRICS}
    return {m: v for m, v in typed.items() if v}


def _errors(exc: Exception) -> dict[str, str]:
    """A refused form's messages by field (``limits.emails`` → ``limit_emails``; ``form``:
    none in particular)."""
    if isinstance(exc, ValidationError):
        found: dict[str, str] = {}
        for e in exc.errors():
            loc = [str(part) for part in e["loc"]]
            name = f"limit_{loc[1]}" if loc[:1] == ["limits"] and len(loc) > 1 else loc[0]
            found.setdefault(name, e["msg"])
        return found
    assert isinstance(exc, ApiError)
    if exc.status == 409:
        return {"id": exc.message}
    if exc.details:
        return {d.path.strip("/").split("/")[0] or "form": d.message for d in exc.details}
    return {"form": exc.message}


def _manager(db: Database, visitor: Visitor) -> Caller:
    """An agency session managing client workspaces: its key, in the agency's own workspace.
    Blocking."""
    with db.read_session() as session:
        caller = agency_caller(session, visitor)
    if not caller.agency:
        raise PageError(
            403,
            "Only an agency manages client workspaces",
            "This session was not opened with an agency key.",
        )
    return Caller(caller.key_id, caller.home, caller.scopes, home=caller.home, agency=True)


def _page_in(
    container: Container,
    request: Request,
    visitor: Visitor,
    errors: dict[str, str],
    target: str,
    kept: Form,
) -> Response:
    """The page again, with what was wrong next to the fields of the form sent (422)."""
    with container.db.read_session() as session:
        return _page(
            request, visitor, session, errors=errors, target=target, kept=kept, status_code=422
        )


@router.post("/workspaces")
async def new_workspace(
    request: Request, visitor: AdminVisitor, container: ContainerDep
) -> Response:
    form = await read_form(request)

    def work() -> Response:
        caller = _manager(container.db, visitor)
        try:
            body = WorkspaceCreate.model_validate(
                {"name": form.get("name").strip(), "id": form.get("id").strip() or None}
                | ({"limits": _limits(form)} if _limits(form) else {})
            )
            create_workspace(body, caller, container.db, container.clock)
        except (ValidationError, ApiError) as exc:
            return _page_in(container, request, visitor, _errors(exc), "new", form)
        return done("/console/workspaces", "created")

    return await run_in_threadpool(work)


def _patch_body(form: Form) -> WorkspacePatch:
    """What the submitted form changes: ``name``, ``archived`` (true/false), or the limits
    (a form with ``limits`` set replaces them all)."""
    fields: dict[str, object] = {}
    if "name" in form:
        fields["name"] = form.get("name").strip()
    if "archived" in form:
        fields["archived"] = form.get("archived") == "true"
    if "limits" in form:
        fields["limits"] = _limits(form)
    return WorkspacePatch.model_validate(fields)


@router.post("/workspaces/{workspace_id}")
async def change_workspace(
    workspace_id: WorkspaceId,
    request: Request,
    visitor: AdminVisitor,
    container: ContainerDep,
) -> Response:
    form = await read_form(request)
    caller = await run_in_threadpool(_manager, container.db, visitor)
    try:
        body = _patch_body(form)
        await patch_workspace(container, request, caller, workspace_id, body)
    except (ValidationError, ApiError) as exc:
        if isinstance(exc, ApiError) and exc.status == 404:
            raise PageError(404, "No such workspace", f"“{workspace_id}” is not yours.") from None
        return await run_in_threadpool(
            _page_in, container, request, visitor, _errors(exc), workspace_id, form
        )
    return done("/console/workspaces", "archived" if body.archived else "updated")


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
