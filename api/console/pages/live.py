"""Live updates for the console: ``GET /console/live``, the API's stream of the workspace's
events and run changes (:func:`api.routes.stream.live_response`), opened with the console's
session cookie (a browser's EventSource cannot send an API key).

The browser only needs to know that something changed, not what: each batch of notifications
becomes at most one ``run`` and one ``event`` message carrying how many there were, so a burst
of hundreds of runs a second costs the page one small message per batch (and ``live.js``
refreshes a list at most once a second). A visitor without a live session is answered 401, and
the session is checked again every :data:`RECHECK` seconds. The client must ask for the stream
by name (``Accept: text/event-stream``, as an EventSource does), else 406."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.console.auth import COOKIE, find_session
from api.deps import ContainerDep
from api.routes.stream import Feed, live_response

router = APIRouter()

HEARTBEAT = 15.0
RECHECK = 300.0
"""A stream ends after this many seconds and the browser opens it again, so a session that has
ended (signed out, its key revoked) stops receiving within that time."""


async def condensed(
    feed: Feed, heartbeat: float, max_events: int | None, max_seconds: float | None
) -> AsyncIterator[str]:
    """The feed as one message per kind and batch: ``event: run`` with ``{"count": n}``."""
    yield "retry: 3000\n\n"
    async for batch in feed.batches(heartbeat, max_events, max_seconds):
        kinds = Counter(kind for kind, _ in batch)
        yield (
            "".join(
                f"event: {kind}\ndata: {json.dumps({'count': n})}\n\n" for kind, n in kinds.items()
            )
            or ": heartbeat\n\n"
        )
    if feed.cut_off:
        yield "event: overflow\ndata: {}\n\n"


def _asks_for_a_stream(request: Request) -> bool:
    """The client names ``text/event-stream`` itself (an EventSource does): a stream that never
    ends is no answer for one that takes anything (``*/*``), such as a link preview or a tool
    that fetches every page."""
    accepted = request.headers.get("accept", "")
    return any(
        part.split(";", 1)[0].strip().lower() == "text/event-stream" for part in accepted.split(",")
    )


@router.get("/live")
async def live(
    request: Request,
    container: ContainerDep,
    max_events: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    max_seconds: Annotated[float | None, Query(gt=0, le=86_400)] = None,
) -> Response:
    token = request.cookies.get(COOKIE, "")
    visitor = None
    if token:
        now = container.clock.now()
        visitor = await run_in_threadpool(find_session, container.db, token, now)
    if visitor is None:
        return Response("Sign in to the console first.", status_code=401, media_type="text/plain")
    if not _asks_for_a_stream(request):
        return Response(
            "This is a stream of server-sent events: ask for it with Accept: text/event-stream.",
            status_code=406,
            media_type="text/plain",
        )
    return live_response(
        container.engine,
        visitor.workspace,
        lambda feed: condensed(feed, HEARTBEAT, max_events, max_seconds or RECHECK),
    )
