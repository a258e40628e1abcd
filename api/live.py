"""One process's hub of live notifications: what the live streams (``/v1/stream``, the
console's live updates) subscribe to.

Every notification the hub passes on has an id (the ``id:`` of a Server-Sent Event), and the
hub keeps the newest ones in a bounded ring, so a client that reconnects with ``Last-Event-ID``
gets what it missed. Where the ids come from depends on the mode:

* **One process** (the hub hears its engine): the hub numbers them itself, ``<epoch>-<n>``. A
  hub made by the composition root (``keep=True``) stays subscribed to the engine once a first
  client came, so the ring also covers the time a client is away. One made on demand for an app
  that was not wired (tests) subscribes while it has clients only: its ids start a new epoch
  each time it subscribes again, so a client resuming across a pause is told it missed
  something.
* **Distributed** (``shared=True``): the hub does not hear its engine; every process, this one
  included, announces its changes through PostgreSQL (:mod:`sous.live`), which numbers them
  (plain integers, the same in every process) and delivers them to every listener in one order.
  So every API process's ring holds the same notifications under the same ids, and a client
  may resume on any of them. :meth:`LiveHub.listened` tells the hub the last id announced when
  it (re)started listening; a notification that does not follow on from what the hub heard
  means it missed some: the ring starts over, and its clients get ``gap``.
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
GAP = "gap"
"""The kind of the message telling a subscriber it missed notifications (it has no data)."""

Item = tuple[int, str, "Notice"]


class Notice(dict[str, Any]):
    """A notification's data (written as the message's JSON) with its stream id."""

    __slots__ = ("id",)

    def __init__(self, data: dict[str, Any], id_: str) -> None:
        super().__init__(data)
        self.id = id_


class LiveHub:
    """Numbers notifications (or takes the database's numbers), keeps the newest :data:`RING`,
    and hands them to subscribers."""

    def __init__(
        self, engine: Engine, *, keep: bool = False, ring: int = RING, shared: bool = False
    ) -> None:
        self.engine = engine
        self.keep = keep
        self.shared = shared
        self.on_demand: Callable[[], Awaitable[None]] | None = None
        """Started when a client subscribes, done once other processes' notifications arrive
        (the distributed relay listens from then on)."""
        self._demanded: asyncio.Future[None] | None = None
        self._size = ring
        self._ring: deque[Item] = deque(maxlen=ring)
        self._feeds: dict[Listener, int] = {}
        """Each subscriber, with the id up to which it has them already (see :meth:`_since`)."""
        self._lock = threading.Lock()
        self._position: int | None = None
        """The id of the newest notification; ``None`` while a shared hub is not listening."""
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
        with self._lock:
            number = (self._position or 0) + 1
            self._add(number, f"{self._epoch}-{number}", kind, data)

    def listened(self, position: int) -> None:
        """A shared hub (re)started listening; ``position`` is the id of the last notification
        announced before: the next one it hears should follow on from it."""
        with self._lock:
            if self._position is not None and position != self._position:
                self._lost()
            self._position = position

    def heard(self, first: int, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """Notifications with the ids ``first``, ``first + 1``, … (a shared hub)."""
        with self._lock:
            if self._position is not None and first > self._position + 1:
                self._lost()
            for number, (kind, data) in enumerate(messages, first):
                if self._position is None or number > self._position:  # else heard already
                    self._add(number, str(number), kind, data)

    def _add(self, number: int, id_: str, kind: str, data: dict[str, Any]) -> None:
        """Under the lock: every subscriber sees one order."""
        notice = Notice(data, id_)
        self._position = number
        self._ring.append((number, kind, notice))
        for feed, after in list(self._feeds.items()):
            if number > after:
                feed(kind, notice)

    def _lost(self) -> None:
        """Under the lock: some notifications never reached this hub. Nobody can resume from
        before them, and every subscriber is told."""
        self._ring.clear()
        for feed in list(self._feeds):
            self._feeds[feed] = 0
            feed(GAP, {})

    # -- out ------------------------------------------------------------------------------
    def subscribe(
        self, feed: Listener, last_id: str | None = None
    ) -> tuple[Callable[[], None], bool]:
        """Send ``feed`` every notification from now on, after those it missed since
        ``last_id`` (a ``Last-Event-ID``). Returns the unsubscribe and whether some were lost:
        ``last_id`` older than the ring, not one of this hub's ids (another epoch, or a hub
        that was not listening meanwhile), or from before notifications the hub missed.

        A shared hub may be given an id it has not heard yet (another process heard it a
        little sooner): ``feed`` then gets what follows it, as it comes."""
        self._demand()
        with self._lock:
            if not self.shared and self._unsubscribe is None:
                self._epoch = secrets.token_hex(4)
                self._ring.clear()
                self._position = 0
                self._unsubscribe = self.engine.subscribe(self.local)
            missed, lost, after = self._since(last_id)
            for _, kind, notice in missed:
                feed(kind, notice)
            self._feeds[feed] = after
        return (lambda: self._leave(feed)), lost

    def _since(self, last_id: str | None) -> tuple[list[Item], bool, int]:
        """What came after ``last_id``, whether some of it is lost, and the id up to which the
        subscriber has them already."""
        if not last_id:
            return [], False, 0
        last = self._number(last_id)
        if last is None or self._position is None:
            return [], True, 0
        if last > self._position:
            ahead = self.shared and last - self._position <= self._size
            return [], not ahead, last if ahead else 0
        oldest = self._ring[0][0] if self._ring else self._position + 1
        return [item for item in self._ring if item[0] > last], last < oldest - 1, 0

    def _number(self, last_id: str) -> int | None:
        """The number in one of this hub's ids; ``None`` for another's."""
        number = last_id
        if not self.shared:
            epoch, _, number = last_id.partition("-")
            if epoch != self._epoch:
                return None
        return int(number) if number.isascii() and number.isdigit() else None

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

    def _leave(self, feed: Listener) -> None:
        with self._lock:
            self._feeds.pop(feed, None)
            if not self._feeds and not self.keep and self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None

    @property
    def subscribers(self) -> int:
        return len(self._feeds)
