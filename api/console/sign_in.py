"""Signing in to the console with an API key, and signing out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from api.console.auth import (
    COOKIE,
    SIGN_IN_COOKIE,
    CsrfRefused,
    Opened,
    VisitorDep,
    clear_session_cookie,
    close_session,
    form_token_ok,
    open_session,
    safe_next,
    set_session_cookie,
    with_form_token,
)
from api.console.forms import read_form
from api.console.render import page
from api.deps import ContainerDep
from api.keys import authenticate
from sous.container import Container

router = APIRouter()


def _form(request: Request, *, next_url: str, problem: str = "", status: int = 200) -> Response:
    """The sign-in form, with a fresh token in its field and in a cookie of its own (there is
    no session yet to hold one)."""

    def render(token: str) -> Response:
        return page(
            request,
            "sign_in.html",
            status_code=status,
            title="Sign in",
            csrf=token,
            next=safe_next(next_url),
            problem=problem,
        )

    return with_form_token(request, render, SIGN_IN_COOKIE, "/console/sign-in", "lax")


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: str = "/console/") -> Response:
    return _form(request, next_url=next)


def _sign_in(container: Container, key: str) -> Opened | None:
    now = container.clock.now()
    caller = authenticate(container.db, key.strip(), now)
    if caller is None or caller.stores is not None:
        return None  # the console shows the whole workspace: a store-limited key cannot sign in
    return open_session(
        container.db,
        caller.workspace,
        scopes=sorted(caller.scopes),
        key_id=caller.key_id,
        now=now,
    )


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request, container: ContainerDep) -> Response:
    form = await read_form(request)
    key, next = form.get("key")[:200], form.get("next", "/console/")
    if not form_token_ok(request, SIGN_IN_COOKIE, form.get("csrf")):
        raise CsrfRefused()
    opened = await run_in_threadpool(_sign_in, container, key) if key.strip() else None
    if opened is None:
        problem = (
            "That API key is unknown or revoked, or limited to some stores "
            "(the console needs a key of the whole workspace). Check it and try again."
        )
        return _form(request, next_url=next, problem=problem, status=401)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, request, opened)
    response.delete_cookie(SIGN_IN_COOKIE, path="/console/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, visitor: VisitorDep, container: ContainerDep) -> Response:
    await run_in_threadpool(close_session, container.db, request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/console/sign-in", status_code=303)
    clear_session_cookie(response, request)
    return response
