"""Outgoing webhooks: envelope, scope matching, delivery with retries, deactivation, delivery log.

Each event a store raises is sent to every *active* hook whose scope matches, exactly or through a
wildcard (``store/product/*`` matches ``store/product/inventory/updated``). The envelope is the
published one — ``scope`` (the concrete event scope), ``store_id`` (string), ``data``, ``hash``,
``created_at`` (Unix seconds), ``producer`` (``stores/{hash}``) — POSTed as JSON with the hook's
custom ``headers``. ``hash`` is the documented SHA-1 of the JSON-encoded ``data``: the same on
every retry of one event, and also the same for two events with equal data (two sales of one unit
in the same second send byte-identical bodies). With ``webhook_signing`` the Standard Webhooks
headers (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``: ``v1,`` + base64
HMAC-SHA256 of ``id.timestamp.body`` keyed with the store's client secret) are added;
``webhook-id`` names the event, so it repeats on every retry and differs between events.

A 2xx answer is a success; any other status, a timeout or a connection error is a failure. A failed
delivery is retried after 60 s, 180 s, 300 s, … 86 400 s (:data:`RETRY_SCHEDULE_S`, times
``webhook_time_scale``) on the simulator's clock; after the last retry fails the hook is
deactivated (``is_active: false``). Hooks made inactive or deleted meanwhile are not retried.
``await deliveries.drain()`` returns once nothing is queued, being sent or waiting for a retry;
``await deliveries.settle()`` once nothing is queued or being sent (retries may still wait on the
clock — advance a ``ManualClock`` and settle again).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from engine import Clock

from .config import RETRY_SCHEDULE_S
from .formats import iso
from .state import Store, WebhookEvent


def scope_matches(hook_scope: str, event_scope: str) -> bool:
    if hook_scope == event_scope:
        return True
    return hook_scope.endswith("/*") and event_scope.startswith(hook_scope[:-1])


def data_hash(data: Any) -> str:
    """The envelope's ``hash``: SHA-1 of the JSON-encoded ``data`` (webhooks.md §1), so two
    events with the same data (two sales of one unit) carry the same hash."""
    encoded = json.dumps(data, separators=(",", ":")).encode()
    return hashlib.sha1(encoded).hexdigest()  # noqa: S324 - BigCommerce's hash, not security


def envelope(store: Store, event: WebhookEvent) -> dict[str, Any]:
    digest = data_hash(event.data)
    return {
        "scope": event.scope,
        "store_id": str(store.store_id),
        "data": event.data,
        "hash": digest,
        "created_at": event.created_at,
        "producer": f"stores/{store.store_hash}",
    }


@dataclass(frozen=True)
class DeliveryRecord:
    """One delivery attempt, as kept in :attr:`Deliveries.log`."""

    store_hash: str
    hook_id: int
    event_seq: int
    scope: str
    destination: str
    attempt: int
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None
    payload: dict[str, Any]
    headers: dict[str, str]

    def public(self) -> dict[str, Any]:
        return {
            "store_hash": self.store_hash,
            "hook_id": self.hook_id,
            "event_seq": self.event_seq,
            "scope": self.scope,
            "destination": self.destination,
            "attempt": self.attempt,
            "time": iso(self.at),
            "ok": self.ok,
            "status_code": self.status_code,
            "error": self.error,
            "payload": self.payload,
        }


@dataclass
class _Job:
    store: Store
    hook_id: int
    event: WebhookEvent
    payload: dict[str, Any]
    body: bytes
    failures: int = 0


@dataclass
class _Waiter:
    ready: Callable[[], bool]
    future: asyncio.Future[None] = field(repr=False)


class Deliveries:
    """The delivery queue of one simulator (all stores)."""

    def __init__(
        self,
        clock: Clock,
        *,
        time_scale: float = 1.0,
        timeout_s: float = 10.0,
        workers: int = 1,
        signing: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.clock = clock
        self.time_scale = time_scale
        self.timeout_s = timeout_s
        self.workers = workers
        self.signing = signing
        self.transport = transport
        self.log: list[DeliveryRecord] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Job] | None = None
        self._backlog: list[_Job] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._outstanding = 0  # jobs not finished (queued, sending or waiting to retry)
        self._active = 0  # jobs queued or sending
        self._retry_due: dict[int, float] = {}  # id(job) -> clock.monotonic() of its retry
        self._waiters: list[_Waiter] = []

    # -- intake ------------------------------------------------------------------------------

    def dispatch(self, store: Store, event: WebhookEvent) -> None:
        """Queue ``event`` for every active hook of ``store`` whose scope matches."""
        hooks = [
            h for h in store.hooks.values() if h.is_active and scope_matches(h.scope, event.scope)
        ]
        if not hooks:
            return
        payload = envelope(store, event)
        body = json.dumps(payload, separators=(",", ":")).encode()
        for hook in sorted(hooks, key=lambda h: h.id):
            self._outstanding += 1
            self._enqueue(_Job(store, hook.id, event, payload, body))

    def _enqueue(self, job: _Job) -> None:
        self._active += 1
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._backlog.append(job)
            return
        self._start()
        assert self._queue is not None
        self._queue.put_nowait(job)

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # first use, or the app outlived the loop it ran on before: start over on this one
            self._loop = loop
            self._queue = asyncio.Queue()
            self._workers = []
            self._client = None
        assert self._queue is not None
        if not self._workers:
            self._workers = [loop.create_task(self._work()) for _ in range(self.workers)]
        for job in self._backlog:
            self._queue.put_nowait(job)
        self._backlog.clear()

    # -- waiting -----------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Deliveries not finished yet (queued, being sent, or waiting for a retry)."""
        return self._outstanding

    async def drain(self) -> None:
        """Wait until every queued delivery succeeded or was given up."""
        await self._wait(lambda: self._outstanding == 0)

    async def settle(self) -> None:
        """Wait until nothing is queued or being sent and no retry is due on the clock.

        Retries whose time has not come yet may still be waiting: with a ``ManualClock``, advance
        it and settle again.
        """
        await self._wait(self._settled)

    def _settled(self) -> bool:
        now = self.clock.monotonic()
        return self._active == 0 and all(due > now for due in self._retry_due.values())

    async def _wait(self, ready: Callable[[], bool]) -> None:
        if self._backlog:
            self._start()
        if ready():
            await asyncio.sleep(0)
            return
        waiter = _Waiter(ready, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        await waiter.future

    def _notify(self) -> None:
        for waiter in list(self._waiters):
            if waiter.ready() and not waiter.future.done():
                waiter.future.set_result(None)
                self._waiters.remove(waiter)

    # -- sending -----------------------------------------------------------------------------

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            try:
                await self._attempt(job)
            finally:
                self._active -= 1
                self._notify()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # trust_env=False: deliveries go straight to the destination, not through a proxy
            # configured for this machine's own outgoing traffic.
            self._client = httpx.AsyncClient(
                transport=self.transport, timeout=self.timeout_s, trust_env=False
            )
        return self._client

    def _headers(self, job: _Job, custom: dict[str, str] | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "BigCommerce-Simulator"}
        headers.update(custom or {})
        if self.signing:
            msg_id = f"msg_{job.store.store_hash}_{job.event.seq}"
            stamp = str(int(self.clock.now().timestamp()))
            signed = f"{msg_id}.{stamp}.".encode() + job.body
            key = job.store.client_secret.encode()
            digest = hmac.new(key, signed, hashlib.sha256).digest()
            headers["webhook-id"] = msg_id
            headers["webhook-timestamp"] = stamp
            headers["webhook-signature"] = "v1," + base64.b64encode(digest).decode()
        return headers

    async def _attempt(self, job: _Job) -> None:
        hook = job.store.hooks.get(job.hook_id)
        if hook is None or not hook.is_active:
            self._finish()
            return
        headers = self._headers(job, hook.headers)
        status: int | None = None
        error: str | None = None
        try:
            response = await self._http().post(hook.destination, content=job.body, headers=headers)
            status = response.status_code
        except Exception as exc:  # any failure to deliver is a failed attempt, never a crash
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        self.log.append(
            DeliveryRecord(
                store_hash=job.store.store_hash,
                hook_id=hook.id,
                event_seq=job.event.seq,
                scope=job.event.scope,
                destination=hook.destination,
                attempt=job.failures + 1,
                at=self.clock.now(),
                ok=ok,
                status_code=status,
                error=error,
                payload=job.payload,
                headers=headers,
            )
        )
        if ok:
            self._finish()
        elif job.failures < len(RETRY_SCHEDULE_S):
            delay = RETRY_SCHEDULE_S[job.failures] * self.time_scale
            job.failures += 1
            self._retry_due[id(job)] = self.clock.monotonic() + delay
            task = asyncio.get_running_loop().create_task(self._retry_later(job, delay))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            hook.is_active = False
            hook.status = "deactivated"
            hook.updated_at = int(self.clock.now().timestamp())
            self._finish()

    async def _retry_later(self, job: _Job, delay: float) -> None:
        await self.clock.sleep(delay)
        self._retry_due.pop(id(job), None)
        self._enqueue(job)
        self._notify()

    def _finish(self) -> None:
        self._outstanding -= 1
        self._notify()

    # -- results -----------------------------------------------------------------------------

    def delivered(self, scope: str | None = None) -> list[dict[str, Any]]:
        """Payloads delivered successfully (optionally only ``scope``), in delivery order."""
        return [r.payload for r in self.log if r.ok and (scope is None or r.scope == scope)]

    async def aclose(self) -> None:
        for task in [*self._workers, *self._tasks]:
            task.cancel()
        for task in [*self._workers, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        self._tasks.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
