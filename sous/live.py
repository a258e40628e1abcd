"""Live notifications across processes: in distributed mode every process (``sous serve`` and
each ``sous worker``) announces its engine's event and run changes through PostgreSQL
``NOTIFY``, and a process serving live streams ``LISTEN``s, so ``/v1/stream`` and the
console's live updates show the runs the workers execute.

* **One numbering, one order.** A process's hub hears its own engine's changes through
  PostgreSQL too, like every other's. The transaction that sends a ``NOTIFY`` takes its
  messages' ids from the one row of ``live_sequence`` (an upsert that locks it until the
  commit), and PostgreSQL delivers notifications to every listener in commit order: ids that
  grow by one, in the same order, in every process. So a client may resume a stream on any API
  process, and a listener that reconnected knows (by the ids) whether it missed some.
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
  sent meanwhile, and its hub tells its streams (``gap``). Nothing here is needed for runs to
  run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from functools import partial
from itertools import accumulate
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


def pack(items: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, str]]:
    """``items`` as NOTIFY payloads (JSON lists of ``[kind, data]``) of at most
    :data:`PAYLOAD` bytes each, with how many messages each holds."""
    payloads: list[tuple[int, str]] = []
    batch: list[str] = []
    size = 2
    for kind, data in items:
        one = json.dumps([kind, data], default=str, separators=(",", ":"))
        if len(one) + 2 > PAYLOAD and kind == "event":
            one = json.dumps([kind, {**data, "runs": None}], default=str, separators=(",", ":"))
        if len(one) + 2 > PAYLOAD:
            log.warning("a %s notification too large to announce was left out", kind)
            continue
        if batch and size + len(one) + 1 > PAYLOAD:
            payloads.append((len(batch), "[%s]" % ",".join(batch)))  # noqa: UP031
            batch, size = [], 2
        batch.append(one)
        size += len(one) + 1
    if batch:
        payloads.append((len(batch), "[%s]" % ",".join(batch)))  # noqa: UP031
    return payloads


NUMBERED = """
WITH taken AS (
    INSERT INTO live_sequence (id, last_id) VALUES (1, %(count)s)
    ON CONFLICT (id) DO UPDATE SET last_id = live_sequence.last_id + EXCLUDED.last_id
    RETURNING last_id - %(count)s AS last
)
SELECT pg_notify(%(channel)s, (taken.last + p.start)::text || ' ' || p.payload)
FROM taken, unnest(%(starts)s::bigint[], %(payloads)s::text[]) AS p(start, payload)
"""
"""One statement (so one transaction) takes the ids and sends the payloads, each prefixed
with its first message's id. The row stays locked until the commit, which queues the
notifications: ids are taken in the order listeners hear them."""


class PgRelay:
    """Announces this process's notifications and hands every process's to the hub."""

    def __init__(self, db: Database, hub: LiveHub) -> None:
        url = db.engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._db = db
        self.hub = hub
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
        packed = pack(items)
        if packed:
            counts = [count for count, _ in packed]
            starts = list(accumulate(counts, initial=1))[:-1]
            payloads = [payload for _, payload in packed]
            args = {"count": sum(counts), "starts": starts, "payloads": payloads}
            await conn.execute(NUMBERED, {"channel": CHANNEL, **args})
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
                    found = await conn.execute("SELECT last_id FROM live_sequence WHERE id = 1")
                    row = await found.fetchone()
                    self.hub.listened(int(row[0]) if row else 0)
                    self._listening.set()
                    async for note in conn.notifies():
                        await self._heard(note.payload)
            except (OSError, psycopg.Error) as exc:
                log.warning("listening for live notifications failed (%s); again soon", exc)
            finally:  # also when stopped: a later listen() waits for the new LISTEN
                self._listening.clear()
            await asyncio.sleep(RETRY)

    async def _heard(self, payload: str) -> None:
        try:
            first, _, body = payload.partition(" ")
            messages = [(str(kind), dict(data)) for kind, data in json.loads(body)]
            start = int(first)
        except (ValueError, TypeError):
            log.warning("a live notification could not be read: %.200s", payload)
            return
        for kind, data in messages:
            if kind == "event" and data.get("runs") is None:
                data["runs"] = await self._db.read(partial(_runs_of, event_id=data.get("id")))
        self.heard += len(messages)
        self.hub.heard(start, messages)

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
    shared = not container.db.is_sqlite
    hub = LiveHub(container.engine, keep=True, shared=shared)
    container.engine.services.add(hub)
    if not shared:
        return hub
    relay = PgRelay(container.db, hub)
    container.engine.services.add(relay)
    unsubscribe = container.engine.subscribe(relay.publish)
    hub.on_demand = relay.listen
    relay.start()
    stack.push_async_callback(relay.stop)
    stack.callback(unsubscribe)
    return hub
