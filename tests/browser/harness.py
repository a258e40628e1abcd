"""What the browser tests drive: a real ``sous serve --sandbox`` in a folder of its own, and a
browser tab on it that records what a merchant would not want to see (requests leaving this
machine, console errors, CSP violations) and keeps a screenshot of each page it shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from sous.sandbox import DEMO_STORE, DEMO_TOKEN, free_port

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
READY_SECONDS = 120.0
_KEY = re.compile(r"API key \(sandbox\):\s+(sous_\S+)")
_SIMULATOR = re.compile(r"store simulator:\s+(http://127\.0\.0\.1:\d+)/stores/")


@dataclass
class SandboxServer:
    """A running ``sous serve --sandbox``: its address, the key it printed, its simulated store."""

    base: str
    key: str
    simulator: str
    folder: Path
    log: Path

    def api(self, key: str | None = None) -> httpx.Client:
        """A client of the API, with the sandbox's key (or ``key``)."""
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)

    def create_key(self, workspace: str, *scopes: str) -> str:
        """A new API key of ``workspace`` (made if new) in the sandbox's database, the way a
        merchant makes one: ``SOUS_SANDBOX=1 sous keys create``."""
        argv = [_sous(), "keys", "create", "--workspace", workspace, "--name", "browser-test"]
        for scope in scopes:
            argv += ["--scope", scope]
        done = subprocess.run(
            argv,
            cwd=self.folder,
            env=_env(SOUS_SANDBOX="1"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"sous keys create failed: {done.stderr}")
        return done.stdout.strip().splitlines()[-1]

    def product(self, name: str) -> dict[str, Any]:
        """The demo store's product called ``name``, as the store's catalog API gives it."""
        with httpx.Client(
            base_url=f"{self.simulator}/stores/{DEMO_STORE}",
            headers={"X-Auth-Token": DEMO_TOKEN},
            timeout=30,
        ) as store:
            found = store.get("/v3/catalog/products", params={"name": name})
            found.raise_for_status()
            data: list[dict[str, Any]] = found.json()["data"]
        assert data, f"the demo store has no product called {name!r}"
        return data[0]

    def buy(self, name: str, quantity: int | None = None) -> list[dict[str, Any]]:
        """A simulated shopper checks out ``quantity`` of the product called ``name`` (every
        unit left when ``None``, in as many orders as the product's most per order needs): the
        store sends its webhooks as BigCommerce would. The orders, as the simulator made them."""
        product = self.product(name)
        left = int(product.get("inventory_level") or 0) if quantity is None else quantity
        most = int(product.get("order_quantity_maximum") or 0) or left
        orders = []
        with httpx.Client(base_url=self.simulator, timeout=30) as control:
            while left > 0:
                units = min(most, left)
                answer = control.post(
                    f"/_sim/stores/{DEMO_STORE}/orders",
                    json={"lines": [{"product_id": product["id"], "quantity": units}]},
                )
                assert answer.status_code == 201, f"the store refused the order: {answer.text}"
                orders.append(answer.json())
                left -= units
        return orders


def _sous() -> str:
    return str(Path(sys.executable).parent / "sous")


def _env(**extra: str) -> dict[str, str]:
    """This process's environment without its ``SOUS_`` settings (the sandbox picks its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUS_")}
    return env | {"NO_COLOR": "1"} | extra


@contextmanager
def sandbox_server(folder: Path) -> Iterator[SandboxServer]:
    """``sous serve --sandbox`` on a free port with ``folder`` as its working directory (its
    database goes there), its output in ``folder/serve.log``; stopped on the way out."""
    port, log = free_port(), folder / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [_sous(), "serve", "--sandbox", "--port", str(port)],
            cwd=folder,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        key, simulator = _wait_until_ready(base, log, server)
        yield SandboxServer(base, key, simulator, folder, log)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _wait_until_ready(base: str, log: Path, server: subprocess.Popen[bytes]) -> tuple[str, str]:
    """The key and the simulator's address from the welcome banner, once ``/healthz`` answers."""
    deadline = time.monotonic() + READY_SECONDS
    with httpx.Client(base_url=base, timeout=5) as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"sous serve --sandbox exited:\n{log.read_text()}")
            text = log.read_text(errors="replace")
            key, simulator = _KEY.search(text), _SIMULATOR.search(text)
            if key and simulator:
                try:
                    if client.get("/healthz").status_code == 200:
                        return key.group(1), simulator.group(1)
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
    raise RuntimeError(f"sous serve --sandbox was not ready in {READY_SECONDS:.0f} s:\n{text}")


def is_local(url: str) -> bool:
    """A request that stays on this machine (or never leaves the page: data:, blob:, about:)."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "chrome-error"):
        return True
    return parts.hostname in LOCAL_HOSTS


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "page"


@dataclass
class Findings:
    """What a tab saw that a merchant should never see."""

    outside: list[str] = field(default_factory=list)
    """Requests to another host (aborted: the console works offline)."""
    errors: list[str] = field(default_factory=list)
    """Console errors (CSP violations among them) and uncaught page errors."""
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    """Console errors a test expects (a 401 answer to a wrong key logs one)."""

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


def landed(path: str) -> bool:
    """Whether the console has a page at ``path`` (a GET route under ``/console``): a journey
    through a page that is not written yet is skipped, one through a page that is must pass."""
    from fastapi.routing import iter_route_contexts

    from api.console import router

    wanted = path.split("?", 1)[0]
    for context in iter_route_contexts(router.routes):
        methods = getattr(context.original_route, "methods", None) or set()
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", context.path or "")
        if "GET" in methods and re.fullmatch(pattern, wanted):
            return True
    return False
