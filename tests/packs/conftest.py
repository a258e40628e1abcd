"""Packs built from the recording connector's trigger and action, in temporary folders."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import SQLModel

from engine.clock import ManualClock
from engine.packs import models  # noqa: F401  (registers the pack tables)
from engine.packs.install import PackService
from engine.registry import Registry
from engine.store.db import Database
from tests.connectors.email.conftest import self_signed_cert, server_tls
from tests.templates.conftest import STOCK_TEMPLATE

RECIPE = """\
id: log-every-stock-change
name: Log every stock change
trigger: {type: test.stock}
actions:
  - use: test.record
    with: {message: "{{ product.name }} changed"}
"""

PackWriter = Callable[..., Path]


def write_pack(
    folder: Path,
    *,
    name: str = "demo",
    version: str = "1.0.0",
    templates: dict[str, str] | None = None,
    recipes: dict[str, str] | None = None,
    readme: str | None = "# demo\n",
    extra: dict[str, str] | None = None,
    **manifest: Any,
) -> Path:
    """A pack folder; by default one template (``stock-alert``) and one ready-made recipe."""
    root = folder / f"{name}-{version}"
    root.mkdir(parents=True)
    data = {
        "name": name,
        "version": version,
        "description": "Demo pack",
        "sous": ">=0.1,<1",
        "connectors": ["test"],
        **manifest,
    }
    (root / "pack.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    if readme is not None:
        (root / "README.md").write_text(readme)
    for sub, files in (
        ("templates", templates if templates is not None else {"stock-alert.yaml": STOCK_TEMPLATE}),
        ("recipes", recipes if recipes is not None else {"log.yaml": RECIPE}),
    ):
        (root / sub).mkdir()
        for file, text in files.items():
            (root / sub / file).write_text(text)
    for path, text in (extra or {}).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


@pytest.fixture
def make_pack(tmp_path: Path) -> PackWriter:
    def make(**settings: Any) -> Path:
        return write_pack(tmp_path / "src", **settings)

    return make


@pytest.fixture
def service(db: Database, registry: Registry, clock: ManualClock, tmp_path: Path) -> PackService:
    db.create_all()
    SQLModel.metadata.create_all(db.engine)
    return PackService(db, registry, clock, library=tmp_path / "library")


@dataclass
class PackHost:
    """An https server on 127.0.0.1 (its own certificate authority): ``files`` by path, and
    ``redirects`` (path → Location); ``seen`` lists the paths asked for."""

    port: int
    verify: ssl.SSLContext
    files: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"


@pytest.fixture
def pack_host(tmp_path: Path) -> Iterator[PackHost]:
    cert, key = self_signed_cert(tmp_path)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    httpd.socket = server_tls(cert, key).wrap_socket(httpd.socket, server_side=True)
    host = PackHost(httpd.server_address[1], ssl.create_default_context(cafile=str(cert)))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            host.seen.append(self.path)
            if self.path in host.redirects:
                self.send_response(302)
                self.send_header("Location", host.redirects[self.path])
                body = b""
            else:
                body = host.files.get(self.path, b"")
                self.send_response(200 if self.path in host.files else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd.RequestHandlerClass = Handler
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield host
    httpd.shutdown()
    httpd.server_close()
    thread.join()
