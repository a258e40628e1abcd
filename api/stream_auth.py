"""Who may read the live stream: an API key, or a console session's cookie.

A browser's ``EventSource`` cannot send an ``Authorization`` header, so ``GET /v1/stream``
also takes the console's session cookie (``sous_session``, HttpOnly, SameSite=Lax outside an
embedded store panel). A request with an API key is authenticated by the key alone, exactly as
every other route; one without gets the cookie's workspace, or 401.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials

from api.console.auth import COOKIE, find_session
from api.deps import ContainerDep, bearer, current_key
from api.errors import ApiError


async def stream_workspace(
    request: Request,
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The workspace whose notifications the caller may read."""
    if credentials is not None:
        workspace = request.headers.get("Sous-Workspace")
        caller = await current_key(request, container, credentials, workspace)
        return caller.workspace
    token = request.cookies.get(COOKIE, "")
    if token:
        now = container.clock.now()
        visitor = await run_in_threadpool(find_session, container.db, token, now)
        if visitor is not None and visitor.can("read"):
            return visitor.workspace
    raise ApiError(
        401,
        "send an API key (Authorization: Bearer sous_…) or sign in to the console",
        headers={"WWW-Authenticate": "Bearer"},
    )


StreamWorkspaceDep = Annotated[str, Depends(stream_workspace)]
