"""The outermost layer of every request: a request id, a body size limit, and a last-resort
handler so that no failure ever reaches a client as a stack trace."""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BodyTooLarge, error_response
from engine import REQUEST_ID, transient

log = logging.getLogger("sous.api")
_GOOD_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Guard:
    """Pure ASGI middleware (streaming responses pass through untouched)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if _GOOD_ID.match(given) else "req_" + secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send_with_id, request_id)
            return
        token = REQUEST_ID.set(request_id)  # log lines and spans of this request carry it
        try:
            await self.app(scope, self._counting(receive), send_with_id)
        except BodyTooLarge:
            if not started:
                await self._too_large(scope, receive, send_with_id, request_id)
        except Exception as exc:
            if transient(exc):  # the database is restarting, or dropped a connection
                method, path = scope["method"], scope["path"]
                log.warning("%s %s (request %s): %s", method, path, request_id, exc)
                response = error_response(
                    503,
                    "the database is unreachable or dropped the connection; try again shortly",
                    request_id=request_id,
                    headers={"Retry-After": "1"},
                )
            else:
                log.exception(
                    "unhandled error in %s %s (request %s)",
                    scope["method"],
                    scope["path"],
                    request_id,
                )
                response = error_response(
                    500,
                    "internal error; quote the request id when reporting it",
                    request_id=request_id,
                )
            if not started:
                await response(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        return counted

    async def _too_large(self, scope: Scope, receive: Receive, send: Any, request_id: str) -> None:
        message = str(BodyTooLarge(self.max_body_bytes))
        response = error_response(413, message, request_id=request_id)
        await response(scope, receive, send)
