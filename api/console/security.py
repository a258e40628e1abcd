"""Headers of every console page, asset and of ``/docs``: a strict Content-Security-Policy (no
inline script or style anywhere; framing only by this site and a store's control panel),
``nosniff`` and a same-origin referrer. An unexpected failure on those paths is answered with
the HTML error page instead of the API's JSON body."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("sous.api")

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'self' https://*.bigcommerce.com https://*.mybigcommerce.com",
        "form-action 'self'",
        "base-uri 'none'",
    )
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
PREFIXES = ("/console", "/docs")


def is_console(path: str) -> bool:
    """``/console``, ``/console/…`` and ``/docs`` (not ``/consoles`` nor ``/v1/…``)."""
    return any(path == p or path.startswith(p + "/") for p in PREFIXES)


class ConsoleHeaders:
    """Pure ASGI middleware: adds :data:`HEADERS` to answers on :data:`PREFIXES` (pages are
    not cached; assets are), and turns an unhandled error there into the HTML error page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_console(scope["path"]):
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/console/static/")
        started = False

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [h for h in HEADERS if h[0] not in names]
                if not static and b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception:
            request = Request(scope)
            request_id = getattr(request.state, "request_id", None)
            log.exception(
                "unhandled error in %s %s (request %s)", scope["method"], scope["path"], request_id
            )
            if started:
                raise
            from api.console.render import error_page

            response = error_page(
                request,
                500,
                "Something went wrong on our side",
                "Nothing you did caused this. Try again in a moment; if it keeps happening, "
                "tell whoever runs this Sous.",
                request_id,
            )
            await response(scope, receive, with_headers)
