"""``sous serve --sandbox``: a store simulator, an SMTP sink and the example recipes, so a
newcomer sees a recipe fire within seconds of starting Sous.

Start-up, in order: the BigCommerce store simulator on a free loopback port (or the one named
by ``SOUS_SANDBOX_SIMULATOR_URL``, for a simulator that must outlive Sous), and a local SMTP
sink whose messages the API lists at ``/v1/sandbox/messages``. Once the API answers, the sandbox
creates an API key, connects the simulator's demo store through the API (which registers the
webhooks), loads ``recipes/examples`` for that store, and then a simulated shopper buys the last
"Cat Eye Sunglasses": the store sends its webhooks, the out-of-stock recipe runs, and what it did
is printed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from fastapi import APIRouter

from api.deps import CurrentKey
from connectors.email.sink import SmtpSink
from sous.container import Container
from sous.output import paint
from sous.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "recipes" / "examples"
DEMO_STORE = "sousdemo"
DEMO_TOKEN = "sim-demo-token"  # noqa: S105 - the simulator's published demo token
DEMO_PRODUCT = "Cat Eye Sunglasses"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _fresh_database(path: Path) -> str:
    """The sandbox starts from an empty database (its simulator starts from a fresh store)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


class Sandbox:
    def __init__(self, settings: Settings, *, shopper: bool = True, announce: bool = True) -> None:
        self.settings = settings
        self._shopper = shopper
        self._announce = announce
        self.sink = SmtpSink(port=0)
        self._sim_server: uvicorn.Server | None = None
        self._sim_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.simulator_url = os.environ.get("SOUS_SANDBOX_SIMULATOR_URL", "").rstrip("/")
        self.api_key: str | None = None
        self.ready = asyncio.Event()
        """Set once the demo store is connected and the example recipes are loaded."""

    # What the API needs of a sandbox (api.deps.SandboxLike).
    @property
    def store_base_url(self) -> str:
        return f"{self.simulator_url}/stores/{{store_hash}}"

    @property
    def transport(self) -> httpx.AsyncBaseTransport | None:
        return None

    async def __aenter__(self) -> Sandbox:
        if not self.simulator_url:
            await self._start_simulator()
        await self.sink.start()
        database = self.settings.database_url
        if "SOUS_DATABASE_URL" not in os.environ:
            database = _fresh_database(Path("sous-data") / "sandbox.db")
        self.settings = self.settings.model_copy(
            update={
                "database_url": database,
                "smtp_host": "127.0.0.1",
                "smtp_port": self.sink.port,
                "smtp_tls": "none",
            }
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await self.sink.stop()
        if self._sim_server is not None and self._sim_task is not None:
            self._sim_server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._sim_task

    async def _start_simulator(self) -> None:
        from connectors.bigcommerce.simulator import SimulatorConfig, create_simulator

        port = free_port()
        app = create_simulator(SimulatorConfig(webhook_time_scale=0.01))
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self._sim_server = uvicorn.Server(config)
        self._sim_task = asyncio.create_task(self._sim_server.serve())
        while not self._sim_server.started:
            if self._sim_task.done():
                self._sim_task.result()
            await asyncio.sleep(0.02)
        self.simulator_url = f"http://127.0.0.1:{port}"

    async def attach(self, container: Container) -> None:
        """Called once the engine runs; the rest happens when the API answers."""
        container.extras["sandbox"] = self
        container.extras.setdefault("api.routers", []).append(self.router())
        task = asyncio.create_task(self._introduce(container))
        self._tasks.add(task)

    async def _introduce(self, container: Container) -> None:
        from api.keys import create_key
        from sous.serve import load_recipe_folder

        settings = container.settings
        api = f"http://{settings.host}:{settings.port}"
        self.api_key = create_key(container.db, "sandbox", ["read", "write", "admin"], "sandbox")
        headers = {"Authorization": f"Bearer {self.api_key}"}
        container.extras["bigcommerce.public_base_url"] = api
        async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as client:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            answer = await client.post(
                "/v1/stores",
                json={
                    "store_hash": DEMO_STORE,
                    "access_token": DEMO_TOKEN,
                    "name": "Sandbox store",
                },
            )
            if answer.status_code != 201:
                print(
                    paint(f"sandbox: connecting the demo store failed: {answer.text}", "red"),
                    flush=True,
                )
                return
            loaded = load_recipe_folder(container, EXAMPLES, workspace="sandbox", store=DEMO_STORE)
            self.ready.set()
            if self._announce:
                self._watch(container)
                self._print_welcome(api, loaded)
            if self._shopper:
                await asyncio.sleep(1.0)
                await self.sell_out(DEMO_PRODUCT)

    async def sell_out(self, name: str) -> None:
        """A shopper buys every unit left of the product called ``name``."""
        async with httpx.AsyncClient(
            base_url=f"{self.simulator_url}/stores/{DEMO_STORE}",
            headers={"X-Auth-Token": DEMO_TOKEN},
        ) as sim:
            found = (await sim.get("/v3/catalog/products", params={"name": name})).json()["data"]
            if not found:
                return
            product = found[0]
            left = int(product.get("inventory_level") or 0)
            if self._announce:
                print(paint(f"\nA shopper buys the last {left} of {name} …", "bold"), flush=True)
            async with httpx.AsyncClient(base_url=self.simulator_url) as control:
                await control.post(
                    f"/_sim/stores/{DEMO_STORE}/orders",
                    json={"lines": [{"product_id": product["id"], "quantity": left}]},
                )

    def router(self) -> APIRouter:
        """``GET /v1/sandbox/messages``: the e-mails the SMTP sink has captured."""
        router = APIRouter(prefix="/v1/sandbox", tags=["sandbox"])
        sink = self.sink

        @router.get("/messages", summary="E-mails captured by the sandbox's SMTP sink")
        async def messages(caller: CurrentKey) -> dict[str, Any]:
            data = [m.to_dict() for m in reversed(sink.messages)]
            return {"data": data, "count": len(data)}

        return router

    def _watch(self, container: Container) -> None:
        def on_change(kind: str, data: dict[str, Any]) -> None:
            if kind != "run" or data.get("workspace") != "sandbox":
                return
            status = data.get("status")
            if status in ("succeeded", "succeeded_with_errors", "failed", "loop_stopped"):
                stored = container.engine.recipes.by_uid(str(data.get("recipe_uid")))
                name = stored.recipe.id if stored else data.get("recipe_uid")
                colour = (
                    "green" if status == "succeeded" else "yellow" if status != "failed" else "red"
                )
                print(paint(f"  run {data['id']}  {name}: {status}", colour), flush=True)
                if stored and status == "succeeded" and self.sink.messages:
                    last = self.sink.messages[-1]
                    print(f"    e-mail to {', '.join(last.to)}: {last.subject}", flush=True)

        container.engine.subscribe(on_change)

    def _print_welcome(self, api: str, loaded: int) -> None:
        lines = [
            "",
            paint("Sous sandbox is ready", "bold"),
            f"  API and docs:       {api}/docs",
            f"  API key (sandbox):  {self.api_key}",
            f"  store simulator:    {self.simulator_url}/stores/{DEMO_STORE}  (token {DEMO_TOKEN})",
            f"  simulator control:  {self.simulator_url}/_sim/docs",
            f"  SMTP sink:          127.0.0.1:{self.sink.port}",
            f"  captured e-mail:    GET {api}/v1/sandbox/messages",
            f"  example recipes:    {loaded} loaded from recipes/examples",
            "",
            "Next: list runs with",
            f"  curl -H 'Authorization: Bearer {self.api_key}' {api}/v1/runs",
            "and sell out another product with",
            f"  curl -X PUT {self.simulator_url}/_sim/stores/{DEMO_STORE}/stock \\",
            "       -H 'Content-Type: application/json' -d '{\"product_id\": 112, \"level\": 0}'",
        ]
        print("\n".join(lines), flush=True)
