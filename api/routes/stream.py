"""Live updates: Server-Sent Events of the caller's workspace's events and run changes.

Each message is ``event: event`` or ``event: run`` with an ``id:`` line and a JSON ``data:``
line; a comment line (``: heartbeat``) is sent when nothing else has been for ``heartbeat``
seconds. ``max_events`` and ``max_seconds`` end the stream early (for scripts and tests); a
client that falls too far behind is disconnected and should reconnect.

A client that reconnects with ``Last-Event-ID`` (browsers do it by themselves) first gets what
it missed, from the process's ring of recent notifications (:mod:`api.live`); when that is no
longer there (too old, or not an id this process knows) it gets an ``event: gap`` message
instead, and should reload what it shows. In distributed mode the stream carries the runs and
events of every process, workers included, under ids every API process shares: a client may
resume on any of them. A ``gap`` can also come mid-stream, when this process's connection to
PostgreSQL dropped and it missed notifications.

Authentication: an API key (``Authorization: Bearer``), or the console's session cookie (a
browser's ``EventSource`` cannot send a header).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from api.deps import EngineDep
from api.errors import responses
from api.live import GAP, LiveHub, Notice
from api.stream_auth import StreamWorkspaceDep
from engine import Engine

router = APIRouter(prefix="/v1", tags=["stream"], responses=responses(401, 422))
_BACKLOG = 1000
_BATCH = 200
_LINGER = 0.05
"""While notifications keep coming, a subscriber gets at most one write per this many seconds
(each write gathers what came meanwhile); a notification after a quiet spell goes at once."""


def _message(kind: str, data: dict[str, Any]) -> str:
    line = f"id: {data.id}\n" if isinstance(data, Notice) else ""
    return f"{line}event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"


_STREAM = {
    "description": "A stream of server-sent events",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


class Feed:
    """One subscriber's queue of notifications, filtered to its workspace."""

    def __init__(self, workspace: str) -> None:
        self.workspace = workspace
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(_BACKLOG)
        self.overflowed = False
        self.lost = False
        """Notifications since the client's ``Last-Event-ID`` are no longer known."""
        self.cut_off = False
        """The client fell too far behind: :meth:`batches` ended before its limits."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind != GAP and data.get("workspace") != self.workspace:
            return
        if threading.get_ident() == self._thread:
            self._put(kind, data)
        else:
            self._loop.call_soon_threadsafe(self._put, kind, data)

    def _put(self, kind: str, data: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait((kind, data))
        except asyncio.QueueFull:
            self.overflowed = True

    async def batches(
        self, heartbeat: float, max_events: int | None, max_seconds: float | None
    ) -> AsyncIterator[list[tuple[str, dict[str, Any]]]]:
        """Notifications in batches, as they come; an empty batch when nothing came for
        ``heartbeat`` seconds. Ends after ``max_events`` or ``max_seconds``, or on overflow
        (then ``cut_off`` is set)."""
        sent = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_seconds if max_seconds is not None else None
        last_write = -_LINGER
        while not self.overflowed:
            wait = heartbeat if deadline is None else min(heartbeat, deadline - loop.time())
            if wait <= 0:
                return
            try:
                first = await asyncio.wait_for(self.queue.get(), wait)
            except TimeoutError:
                if deadline is None or loop.time() < deadline:
                    yield []
                continue
            # Everything already queued goes out in one write: under a burst, one send per
            # message would cost the event loop more than the engine's own work.
            pause = last_write + _LINGER - loop.time()
            if pause > 0:  # a burst: let more gather
                await asyncio.sleep(pause)
            room = _BATCH if max_events is None else min(_BATCH, max_events - sent)
            batch = [first]
            while len(batch) < room and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            yield batch
            last_write = loop.time()
            sent += len(batch)
            if max_events is not None and sent >= max_events:
                return
        self.cut_off = True

    async def messages(
        self, heartbeat: float, max_events: int | None, max_seconds: float | None
    ) -> AsyncIterator[str]:
        yield "retry: 3000\n\n"
        if self.lost:
            yield _message(GAP, {})
        async for batch in self.batches(heartbeat, max_events, max_seconds):
            yield "".join(_message(kind, data) for kind, data in batch) or ": heartbeat\n\n"
        if self.cut_off:
            yield "event: overflow\ndata: {}\n\n"


def live_response(
    engine: Engine,
    workspace: str,
    body: Callable[[Feed], AsyncIterator[str]],
    last_event_id: str | None = None,
) -> StreamingResponse:
    """A stream of ``workspace``'s notifications, written by ``body`` from its :class:`Feed`
    (those missed since ``last_event_id`` first); the feed is unsubscribed when the stream ends
    or the client goes away."""
    feed = Feed(workspace)
    unsubscribe, feed.lost = LiveHub.of(engine).subscribe(feed, last_event_id)
    done = False

    def stop() -> None:
        nonlocal done
        if not done:
            done = True
            unsubscribe()

    async def written() -> AsyncIterator[str]:
        try:
            async for message in body(feed):
                yield message
        finally:
            stop()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        written(), media_type="text/event-stream", headers=headers, background=BackgroundTask(stop)
    )


@router.get(
    "/stream",
    summary="Live events and run changes (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: _STREAM},
)
async def stream(
    workspace: StreamWorkspaceDep,
    engine: EngineDep,
    heartbeat: Annotated[
        float, Query(ge=0.5, le=300, description="Seconds between heartbeats")
    ] = 15.0,
    max_events: Annotated[
        int | None, Query(ge=1, le=100_000, description="Close after this many events")
    ] = None,
    max_seconds: Annotated[
        float | None, Query(gt=0, le=86_400, description="Close after this many seconds")
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=64,
            description="The last message's id: the stream starts with what came after it",
        ),
    ] = None,
    since: Annotated[
        str | None,
        Query(max_length=64, description="The same as Last-Event-ID, for clients without headers"),
    ] = None,
) -> StreamingResponse:
    await LiveHub.of(engine).listening()  # other processes' runs, from the first message
    return live_response(
        engine,
        workspace,
        lambda feed: feed.messages(heartbeat, max_events, max_seconds),
        last_event_id or since,
    )
