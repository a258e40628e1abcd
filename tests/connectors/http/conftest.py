"""A real HTTP server on loopback (``http.server`` in a thread) and an action context for
calling ``http.request`` directly."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.http import OutboundPolicy
from engine.clock import ManualClock
from engine.context import ActionContext, Services
from engine.model.events import Event, NewEvent


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class LocalServer:
    port: int
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Handler(BaseHTTPRequestHandler):
    """Routes: /json, /echo, /status/<n>?retry_after=, /redirect?to=&code=, /big?n=&length=0|1,
    /text?n=, /slow (waits until the test ends). HTTP/1.0: every response closes the connection."""

    server: ThreadingHTTPServer
    state: LocalServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.state.seen.append(Seen(self.command, self.path, headers, body))
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        route = parts.path
        if route == "/json":
            self._send(200, json.dumps({"ok": True, "items": [1, 2]}).encode(), "application/json")
        elif route == "/echo":
            echo = {
                "method": self.command,
                "path": self.path,
                "query": query,
                "headers": headers,
                "body": body,
            }
            self._send(200, json.dumps(echo).encode(), "application/vnd.echo+json; charset=utf-8")
        elif route.startswith("/status/"):
            extra = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
            text = query.get("say", f"status {route.rsplit('/', 1)[1]} from the test server")
            self._send(int(route.rsplit("/", 1)[1]), text.encode(), "text/plain", extra)
        elif route == "/redirect":
            self._send(int(query.get("code", "302")), b"", "text/plain", {"Location": query["to"]})
        elif route == "/loop":
            self._send(302, b"", "text/plain", {"Location": "/loop"})
        elif route == "/big":
            data = b"x" * int(query["n"])
            self._send(200, data, "application/octet-stream", length=query.get("length") != "0")
        elif route == "/text":
            self._send(200, ("é" * int(query["n"])).encode(), "text/plain; charset=utf-8")
        elif route == "/slow":
            self.state.release.wait(10)
            self._send(200, b"late", "text/plain")
        else:
            self._send(404, b"no such route", "text/plain")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def _send(
        self,
        status: int,
        body: bytes,
        kind: str,
        extra: dict[str, str] | None = None,
        length: bool = True,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        if length:
            self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state = LocalServer(port=httpd.server_address[1])
    httpd.RequestHandlerClass = type("BoundHandler", (Handler,), {"state": state})
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


LOOPBACK_ALLOWED = OutboundPolicy(allow_hosts=("127.0.0.1",))

MakeContext = Callable[..., ActionContext]


@pytest.fixture
def make_ctx(clock: ManualClock) -> MakeContext:
    def make(
        policy: OutboundPolicy | None = LOOPBACK_ALLOWED,
        secrets: dict[str, str] | None = None,
        step_id: str = "call",
    ) -> ActionContext:
        services = Services()
        if policy is not None:
            services.add(policy, OutboundPolicy)

        async def emit(event: NewEvent) -> None:
            raise AssertionError("http.request emits nothing")

        now = clock.now()
        return ActionContext(
            run_id="run_1",
            step_id=step_id,
            recipe_uid="rcp_1",
            workspace="default",
            store=None,
            event=Event("evt_1", "test.stock", {}, "default", None, "api", "k", now, now),
            clock=clock,
            services=services,
            emit=emit,
            secrets=dict(secrets or {}),
        )

    return make


def resolver(
    table: dict[str, list[str]], calls: list[str] | None = None
) -> Callable[[str, int], Any]:
    """A resolver answering from ``table`` (and recording each lookup in ``calls``)."""

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise OSError(f"unknown test host {host}")
        return table[host]

    return resolve
