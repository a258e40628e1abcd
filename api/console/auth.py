"""Console sessions and CSRF.

A visitor signs in with an API key (checked exactly as the API checks it) or, later, through a
store's app (:func:`open_session` for a workspace and a user). Either way the server keeps a row
(:class:`~api.tables.ConsoleSessionRow`) keyed on the SHA-256 of a random token; the token
itself lives only in the visitor's ``sous_session`` cookie (HttpOnly, SameSite=Lax, Secure over
https). A session ends when it is signed out, when it sits idle for :data:`IDLE`, after
:data:`LONGEST` in any case, or when the key it was opened with is revoked (by any means: the
lookup joins the key and wants it unrevoked).

Every request that changes something (POST, PUT, PATCH, DELETE) must carry the session's CSRF
token, in the form field ``csrf`` or the header ``X-CSRF-Token`` (htmx sends the header: the
layout sets ``hx-headers`` on ``<body>``), and an ``Origin``, when the browser sends one, of
this very host.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response
from sqlalchemy import delete, update
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from api.console.forms import read_form
from api.console.render import PageError
from api.deps import ContainerDep
from api.keys import SCOPES, Caller, Scope
from api.tables import ApiKeyRow, ConsoleSessionRow
from engine import Database, set_actor

COOKIE = "sous_session"
SIGN_IN_COOKIE = "sous_sign_in"
"""Holds the sign-in form's own CSRF token (a double-submit cookie: there is no session yet)."""
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
IDLE = timedelta(hours=12)
"""A session nobody used for this long has ended."""
LONGEST = timedelta(days=7)
"""No session outlives this, used or not."""
_TOUCH_EVERY = timedelta(minutes=1)
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Visitor:
    """Who is signed in to the console: the session's workspace, what it may do, and the CSRF
    token its forms must send back. Every query a page makes is scoped to ``workspace``."""

    session_id: str
    workspace: str
    scopes: frozenset[str]
    csrf: str
    key_id: str | None = None
    user_id: str | None = None

    @property
    def caller(self) -> Caller:
        """The same :class:`~api.keys.Caller` an API request with the session's key would be."""
        return Caller(self.key_id or "", self.workspace, self.scopes)

    def can(self, scope: Scope) -> bool:
        return self.caller.can(scope)


@dataclass(frozen=True)
class Opened:
    """A session just opened: ``token`` goes in the cookie (and nowhere else)."""

    token: str
    visitor: Visitor
    expires_at: datetime


def open_session(
    db: Database,
    workspace: str,
    *,
    scopes: list[str],
    now: datetime,
    key_id: str | None = None,
    user_id: str | None = None,
) -> Opened:
    """Open a console session for ``workspace``: with the API key ``key_id`` (it ends with the
    key), or for a store's user ``user_id`` (a BigCommerce app's load callback). Blocking: call
    it from a thread (:func:`starlette.concurrency.run_in_threadpool`)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)} (got {scopes!r})")
    token = secrets.token_urlsafe(32)
    row = ConsoleSessionRow(
        id=token_hash(token),
        workspace_id=workspace,
        key_id=key_id,
        user_id=user_id,
        scopes=sorted(set(scopes), key=SCOPES.index),
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + IDLE,
    )
    with db.session() as s:
        s.exec(delete(ConsoleSessionRow).where(col(ConsoleSessionRow.expires_at) < now))
        s.add(row)
        s.commit()
    return Opened(token, _visitor(row), row.expires_at)


def find_session(db: Database, token: str, now: datetime) -> Visitor | None:
    """The visitor ``token`` stands for, or ``None`` once the session has ended. Extends an idle
    session now and then (a short write, once a minute at most). Blocking."""
    if not token or len(token) > 200:
        return None
    with db.read_session() as s:
        found = s.exec(
            select(ConsoleSessionRow, ApiKeyRow.id, ApiKeyRow.revoked_at)
            .join(ApiKeyRow, col(ApiKeyRow.id) == col(ConsoleSessionRow.key_id), isouter=True)
            .where(ConsoleSessionRow.id == token_hash(token))
        ).first()
    if found is None:
        return None
    row, key_found, revoked_at = found
    if row.key_id is not None and (key_found is None or revoked_at is not None):
        return None  # the key it was opened with is revoked (or gone)
    if _aware(row.expires_at) <= now or _aware(row.created_at) + LONGEST <= now:
        return None
    if _aware(row.last_seen_at) < now - _TOUCH_EVERY:
        with db.session() as s:
            s.exec(
                update(ConsoleSessionRow)
                .where(col(ConsoleSessionRow.id) == row.id)
                .values(
                    last_seen_at=now, expires_at=min(now + IDLE, _aware(row.created_at) + LONGEST)
                )
            )
            s.commit()
    return _visitor(row)


def close_session(db: Database, token: str) -> None:
    """Sign out: the session's row is deleted. Blocking."""
    with db.session() as s:
        s.exec(delete(ConsoleSessionRow).where(col(ConsoleSessionRow.id) == token_hash(token)))
        s.commit()


def end_sessions_of_key(session: Session, key_id: str) -> None:
    """Delete every console session opened with ``key_id`` (in the caller's transaction)."""
    session.exec(delete(ConsoleSessionRow).where(col(ConsoleSessionRow.key_id) == key_id))


def _visitor(row: ConsoleSessionRow) -> Visitor:
    return Visitor(
        session_id=row.id,
        workspace=row.workspace_id,
        scopes=frozenset(row.scopes),
        csrf=row.csrf_token,
        key_id=row.key_id,
        user_id=row.user_id,
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(
    response: Response, request: Request, opened: Opened, *, embedded: bool = False
) -> None:
    """Hand the session's token to the browser. ``embedded``: for a session opened inside a
    store's control panel (a cross-site iframe), where a Lax cookie would never be sent back;
    it then needs https (SameSite=None requires Secure) and is partitioned to that site."""
    response.set_cookie(
        COOKIE,
        opened.token,
        max_age=int(LONGEST.total_seconds()),
        path="/",
        httponly=True,
        secure=embedded or is_https(request),
        samesite="none" if embedded else "lax",
    )
    if embedded:
        cookie = response.headers.getlist("set-cookie")[-1]
        del response.headers["set-cookie"]
        response.headers.append("set-cookie", cookie + "; Partitioned")


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, secure=is_https(request), samesite="lax"
    )


class SignInRequired(Exception):
    """No live session: the visitor is sent to the sign-in page, then back to ``next``."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class CsrfRefused(Exception):
    """A change without the session's CSRF token, or from another site: answered with 403."""


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path of this site, never another site."""
    if not value or not value.startswith("/console") or value.startswith("//"):
        return "/console/"
    if "\\" in value or any(ord(c) < 0x20 for c in value):
        return "/console/"
    return value


def sign_in_url(next_url: str) -> str:
    return "/console/sign-in?next=" + quote(safe_next(next_url), safe="/")


def origin_ok(request: Request) -> bool:
    """An ``Origin`` header, when sent, names this host (``null`` and other sites are refused)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return bool(parts.scheme in ("http", "https") and parts.netloc and parts.netloc == host)


def with_form_token(
    request: Request, render: Callable[[str], Response], cookie: str, path: str, samesite: str
) -> Response:
    """A page whose form is used without a session (signing in, an e-mailed link): ``render``
    gets a fresh token for the form's ``csrf`` field, and the cookie ``cookie`` holds it too (a
    double submit, checked by :func:`form_token_ok`)."""
    token = secrets.token_urlsafe(24)
    response = render(token)
    response.set_cookie(
        cookie,
        token,
        max_age=3600,
        path=path,
        httponly=True,
        secure=is_https(request),
        samesite=samesite,  # type: ignore[arg-type]
    )
    return response


def form_token_ok(request: Request, cookie: str, given: str) -> bool:
    """The form's ``csrf`` field is the token its cookie holds, sent from this site."""
    expected = request.cookies.get(cookie, "")
    return bool(
        origin_ok(request) and expected and hmac.compare_digest(given.encode(), expected.encode())
    )


async def csrf_ok(request: Request, expected: str) -> bool:
    """The request carries ``expected`` in ``X-CSRF-Token`` or the form field ``csrf``."""
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        given = (await read_form(request)).get(CSRF_FIELD)
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


async def current_visitor(request: Request, container: ContainerDep) -> Visitor:
    """The signed-in visitor; without a live session, off to the sign-in page. On a change
    (POST, PUT, PATCH, DELETE), the CSRF token and the origin are checked too."""
    token = request.cookies.get(COOKIE, "")
    visitor = None
    if token:
        visitor = await run_in_threadpool(find_session, container.db, token, container.clock.now())
    if visitor is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method in UNSAFE:
            target = request.headers.get("hx-current-url") or "/console/"
            target = urlsplit(target).path or "/console/"
        raise SignInRequired(target)
    if request.method in UNSAFE and not (
        origin_ok(request) and await csrf_ok(request, visitor.csrf)
    ):
        raise CsrfRefused()
    request.state.visitor = visitor
    who = f"key:{visitor.key_id}" if visitor.key_id else f"user:{visitor.user_id}"
    set_actor(f"console:{who}")
    return visitor


VisitorDep = Annotated[Visitor, Depends(current_visitor)]
"""The signed-in visitor of a console page: take it in every page handler."""


async def _admin(visitor: VisitorDep) -> Visitor:
    if not visitor.can("admin"):
        raise PageError(
            403,
            "Only an admin can change this",
            "Your session was opened with a key without the admin scope. Sign in with an "
            "admin key (create one with `sous keys create --scope admin`).",
        )
    return visitor


AdminVisitor = Annotated[Visitor, Depends(_admin)]
"""A signed-in visitor whose session may administer the workspace (keys, secrets)."""
