"""Live notifications across processes: in distributed mode every process (``sous serve`` and
each ``sous worker``) announces its engine's event and run changes through PostgreSQL
``NOTIFY``, and a process serving live streams ``LISTEN``s, so ``/v1/stream`` and the
console's live updates show the runs the workers execute.

* **Small payloads.** A notification is the same few ids and names a local stream gets (a
  run's id, recipe, workspace, status and next step; an event's id, type, store, workspace and
  run ids); several go in one ``NOTIFY`` (up to :data:`PAYLOAD` bytes), sent at most every
  :data:`FLUSH` seconds, so a burst of thousands of runs costs a few statements. An event with
  too many runs to fit is announced without them and the listener reads them from the ``run``
  table.
* **After the commit.** The engine tells its listeners once a change is committed; ``NOTIFY``
  is sent from autocommit connections of its own, never inside the engine's transactions.
* **Best effort.** A process whose connection is down keeps up to :data:`BACKLOG`
  notifications and sends them once it is back; a listener that reconnects has missed what was
  sent meanwhile (clients resuming across that time are not told). Nothing here is needed for
  runs to run.
* A process ignores its own notifications (it heard them from its engine already).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from functools import partial
from typing import Any

import psycopg
from sqlalchemy import text

from api.live import LiveHub
from engine import Database
from sous.container import Container

log = logging.getLogger("sous.live")

CHANNEL = "sous_live"
PAYLOAD = 7_000
"""Bytes of JSON per NOTIFY (PostgreSQL's limit is 8,000)."""
FLUSH = 0.02
BACKLOG = 50_000
RETRY = 1.0


def pack(origin: str, items: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """``items`` as NOTIFY payloads of at most :data:`PAYLOAD` bytes each."""
    head = len(json.dumps({"o": origin, "m": []}))
    payloads: list[str] = []
    batch: list[str] = []
    size = head
    for kind, data in items:
        one = json.dumps([kind, data], default=str, separators=(",", ":"))
        if head + len(one) > PAYLOAD and kind == "event":
            one = json.dumps([kind, {**data, "runs": None}], default=str, separators=(",", ":"))
        if head + len(one) > PAYLOAD:
            log.warning("a %s notification too large to announce was left out", kind)
            continue
        if batch and size + len(one) + 1 > PAYLOAD:
            payloads.append(_envelope(origin, batch))
            batch, size = [], head
        batch.append(one)
        size += len(one) + 1
    if batch:
        payloads.append(_envelope(origin, batch))
    return payloads


def _envelope(origin: str, messages: list[str]) -> str:
    return '{"o":%s,"m":[%s]}' % (json.dumps(origin), ",".join(messages))  # noqa: UP031


class PgRelay:
    """Announces this process's notifications and hands other processes' to the hub."""

    def __init__(self, db: Database, hub: LiveHub) -> None:
        url = db.engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._db = db
        self.hub = hub
        self.origin = uuid.uuid4().hex
        self._out: deque[tuple[str, dict[str, Any]]] = deque(maxlen=BACKLOG)
        self._wake = asyncio.Event()
        self._listening = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.sent = 0
        self.heard = 0

    # -- announcing -----------------------------------------------------------------------
    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """An engine listener (any thread): queue the notification for the next NOTIFY."""
        self._out.append((kind, data))
        if not self._wake.is_set():
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._spawn("announce", self._announce)

    async def _announce(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    while True:
                        await self._send(conn)
                        await asyncio.sleep(FLUSH)
                        await self._wake.wait()
                        self._wake.clear()
            except (OSError, psycopg.Error) as exc:
                log.warning("announcing live notifications failed (%s); again soon", exc)
                self._wake.set()
                await asyncio.sleep(RETRY)

    async def _send(self, conn: psycopg.AsyncConnection[Any]) -> None:
        items = list(self._out)
        if not items:
            return
        payloads = pack(self.origin, items)
        await conn.execute(
            "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p", (CHANNEL, payloads)
        )
        for _ in items:  # sent: only now may they leave the backlog
            self._out.popleft()
        self.sent += len(items)

    # -- listening ------------------------------------------------------------------------
    async def listen(self) -> None:
        """Start listening (once; the hub calls it when a client subscribes); return once
        notifications arrive."""
        self._spawn("listen", self._listen)
        await self._listening.wait()

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    async for note in conn.notifies():
                        await self._heard(note.payload)
            except (OSError, psycopg.Error) as exc:
                log.warning("listening for live notifications failed (%s); again soon", exc)
            self._listening.clear()
            await asyncio.sleep(RETRY)

    async def _heard(self, payload: str) -> None:
        try:
            found = json.loads(payload)
            if found["o"] == self.origin:
                return
            messages = [(str(kind), dict(data)) for kind, data in found["m"]]
        except (ValueError, KeyError, TypeError):
            log.warning("a live notification could not be read: %.200s", payload)
            return
        for kind, data in messages:
            if kind == "event" and data.get("runs") is None:
                data["runs"] = await self._db.read(partial(_runs_of, event_id=data.get("id")))
            self.heard += 1
            self.hub.remote(kind, data)

    # -- lifecycle ------------------------------------------------------------------------
    def _spawn(self, name: str, work: Any) -> None:
        task = self._tasks.get(name)
        if task is None or task.done():
            self._tasks[name] = self._loop.create_task(work(), name=f"sous-live-{name}")

    async def stop(self) -> None:
        """Send what is queued (briefly), then stop."""
        for _ in range(50):
            if not self._out or "announce" not in self._tasks:
                break
            await asyncio.sleep(FLUSH)
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


def _runs_of(tx: Any, event_id: object) -> list[str]:
    rows = tx.conn.execute(
        text("SELECT id FROM run WHERE event_id = :e ORDER BY id"), {"e": event_id}
    )
    return [str(r[0]) for r in rows]


async def wire_live(container: Container, stack: contextlib.AsyncExitStack) -> LiveHub:
    """The process's hub of live notifications; on PostgreSQL, its relay to the others."""
    hub = LiveHub(container.engine, keep=True)
    container.engine.services.add(hub)
    if container.db.is_sqlite:
        return hub
    relay = PgRelay(container.db, hub)
    container.engine.services.add(relay)
    unsubscribe = container.engine.subscribe(relay.publish)
    hub.on_demand = relay.listen
    relay.start()
    stack.push_async_callback(relay.stop)
    stack.callback(unsubscribe)
    return hub
