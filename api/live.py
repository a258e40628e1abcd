"""One process's hub of live notifications: what the live streams (``/v1/stream``, the
console's live updates) subscribe to.

The hub numbers every notification it passes on (``<epoch>-<n>``: the ``id:`` of a
Server-Sent Event) and keeps the newest ones in a bounded ring, so a client that reconnects
with ``Last-Event-ID`` gets what it missed. It hears this process's engine and, in distributed
mode, every other process's runs and events (see :mod:`sous.live`, which calls
:meth:`LiveHub.remote` with what other processes announce through PostgreSQL).

A hub made by the composition root (``keep=True``) stays subscribed to the engine once a first
client came, so the ring also covers the time a client is away. One made on demand for an app
that was not wired (tests) subscribes while it has clients only: its ids start a new epoch each
time it subscribes again, so a client resuming across a pause is told it missed something.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from engine import Engine, Listener

RING = 10_000
"""Notifications kept for clients that reconnect (all workspaces together)."""


class Notice(dict[str, Any]):
    """A notification's data (written as the message's JSON) with its stream id."""

    __slots__ = ("id",)

    def __init__(self, data: dict[str, Any], id_: str) -> None:
        super().__init__(data)
        self.id = id_


class LiveHub:
    """Numbers notifications, keeps the newest :data:`RING`, and hands them to subscribers."""

    def __init__(self, engine: Engine, *, keep: bool = False, ring: int = RING) -> None:
        self.engine = engine
        self.keep = keep
        self.on_demand: Callable[[], Awaitable[None]] | None = None
        """Started when a client subscribes, done once other processes' notifications arrive
        (the distributed relay listens from then on)."""
        self._demanded: asyncio.Future[None] | None = None
        self._ring: deque[tuple[int, str, Notice]] = deque(maxlen=ring)
        self._feeds: list[Listener] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._epoch = ""
        self._unsubscribe: Callable[[], None] | None = None

    @classmethod
    def of(cls, engine: Engine) -> LiveHub:
        """The engine's hub: the one the composition root made, or a new one on demand."""
        found = engine.services.find(LiveHub)
        if found is None:
            found = cls(engine)
            engine.services.add(found)
        return found

    # -- in -------------------------------------------------------------------------------
    def local(self, kind: str, data: dict[str, Any]) -> None:
        """A notification of this process's engine (an engine listener; any thread)."""
        self._publish(kind, data)

    def remote(self, kind: str, data: dict[str, Any]) -> None:
        """A notification another process announced."""
        self._publish(kind, data)

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:  # delivered under the lock: every subscriber sees one order
            self._seq += 1
            notice = Notice(data, f"{self._epoch}-{self._seq}")
            self._ring.append((self._seq, kind, notice))
            for feed in list(self._feeds):
                feed(kind, notice)

    # -- out ------------------------------------------------------------------------------
    def subscribe(
        self, feed: Listener, last_id: str | None = None
    ) -> tuple[Callable[[], None], bool]:
        """Send ``feed`` every notification from now on, after those it missed since
        ``last_id`` (a ``Last-Event-ID``). Returns the unsubscribe and whether some were lost:
        ``last_id`` older than the ring, or from another epoch (another process, or a hub that
        was not listening meanwhile)."""
        self._demand()
        with self._lock:
            if self._unsubscribe is None:
                self._epoch = secrets.token_hex(4)
                self._ring.clear()
                self._unsubscribe = self.engine.subscribe(self.local)
            missed, lost = self._since(last_id)
            for _, kind, notice in missed:
                feed(kind, notice)
            self._feeds.append(feed)
        return (lambda: self._leave(feed)), lost

    def _demand(self) -> asyncio.Future[None] | None:
        if self.on_demand is None:
            return None
        found = self._demanded
        if found is None or (found.done() and (found.cancelled() or found.exception())):
            self._demanded = asyncio.ensure_future(self.on_demand())
        return self._demanded

    async def listening(self, timeout: float = 5.0) -> bool:
        """Wait (up to ``timeout`` seconds) until other processes' notifications arrive here;
        ``True`` at once when there are no other processes."""
        demanded = self._demand()
        if demanded is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(demanded), timeout)
        except TimeoutError:
            return False
        return True

    def _since(self, last_id: str | None) -> tuple[list[tuple[int, str, Notice]], bool]:
        if not last_id:
            return [], False
        epoch, _, number = last_id.partition("-")
        if epoch != self._epoch or not number.isdigit():
            return [], True
        seq = int(number)
        oldest = self._ring[0][0] if self._ring else self._seq + 1
        return [item for item in self._ring if item[0] > seq], seq < oldest - 1

    def _leave(self, feed: Listener) -> None:
        with self._lock:
            if feed in self._feeds:
                self._feeds.remove(feed)
            if not self._feeds and not self.keep and self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None

    @property
    def subscribers(self) -> int:
        return len(self._feeds)
