"""The API gateway in front of every store route: auth, rate limit, faults, request log.

Requests to ``/stores/{store_hash}/v2/...`` and ``/v3/...`` pass here in this order:
unknown store → 404; missing or wrong ``X-Auth-Token`` → 401 (no quota used); quota used up → 429
with ``X-Retry-After``; injected latency (on the simulator's clock); injected 5xx (before the
handler, or after it with ``error_after_commit``). Every answer for a known store carries the four
``X-Rate-Limit-*`` headers and is added to the store's request log.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .catalog import release_preorders
from .formats import ApiError, Version, error_body
from .simulator import Simulator
from .state import RequestRecord

STORE_PATH = re.compile(r"^/stores/(?P<hash>[^/]+)(?P<rest>/(?P<version>v2|v3)(?:/.*)?)$")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def version_of(path: str) -> Version:
    match = STORE_PATH.match(path)
    return "v2" if match is not None and match.group("version") == "v2" else "v3"


async def send_json(
    send: Send,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
    media_type: str = "application/json",
) -> None:
    raw = json.dumps(body).encode()
    head = [(b"content-type", media_type.encode()), (b"content-length", str(len(raw)).encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


class Gateway:
    def __init__(self, app: ASGIApp, sim: Simulator) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = STORE_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        version: Version = "v2" if match.group("version") == "v2" else "v3"
        store = self.sim.state.stores.get(match.group("hash"))
        if store is None:
            err = ApiError(404, "Store not found.")
            await send_json(send, 404, error_body(version, err))
            return
        method: str = scope["method"]
        query = scope.get("query_string", b"").decode()

        def log(
            status: int, *, limited: bool = False, fault: bool = False, handled: int | None = None
        ) -> None:
            store.record_request(
                RequestRecord(
                    method=method,
                    path=match.group("rest"),
                    query=query,
                    status=status,
                    at=self.sim.clock.now(),
                    write=method in WRITE_METHODS,
                    rate_limited=limited,
                    fault=fault,
                    handled_status=handled,
                )
            )

        token = Headers(scope=scope).get("x-auth-token")
        if not store.accepts(token):
            err = ApiError(
                401,
                "Unauthorized - the v3 Auth client ID or token in the request are not a valid "
                "combination for this store.",
            )
            rate = self.sim.limiter.peek(store.store_hash).headers()
            await send_json(send, 401, error_body(version, err), rate)
            log(401)
            return

        release_preorders(store)
        decision = self.sim.limiter.take(store.store_hash)
        rate = decision.headers()
        if not decision.allowed:
            err = ApiError(429, "Too many requests: the store's API quota is used up.")
            await send_json(send, 429, error_body(version, err), rate)
            log(429, limited=True)
            return

        faults = self.sim.faults
        if faults.latency_ms > 0:
            await self.sim.clock.sleep(faults.latency_ms / 1000)
        fail = faults.error_rate > 0 and self.sim.rng.random() < faults.error_rate
        if fail and not faults.error_after_commit:
            await self._fault(send, version, faults.error_status, rate)
            log(faults.error_status, fault=True)
            return

        status_box: list[int] = []

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box.append(message["status"])
                extra = [(k.lower().encode(), v.encode()) for k, v in rate.items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            if not fail:
                await send(message)

        await self.app(scope, receive, send_with_headers)
        handled = status_box[0] if status_box else 500
        if fail:
            await self._fault(send, version, faults.error_status, rate)
            log(faults.error_status, fault=True, handled=handled)
            return
        log(handled, handled=handled)

    @staticmethod
    async def _fault(send: Send, version: Version, status: int, rate: dict[str, str]) -> None:
        title = "Service Unavailable" if status == 503 else "Internal Server Error"
        await send_json(send, status, error_body(version, ApiError(status, title)), rate)
