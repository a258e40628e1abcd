"""``sous serve --sandbox``: a store simulator, an SMTP sink and the example recipes, so a
newcomer sees a recipe fire within seconds of starting Sous.

Start-up, in order: the BigCommerce store simulator on a free loopback port (or the one named
by ``SOUS_SANDBOX_SIMULATOR_URL``, for a simulator that must outlive Sous), and a local SMTP
sink whose messages the API lists at ``/v1/sandbox/messages``. Once the API answers, the sandbox
creates an API key, connects the simulator's demo store through the API (which registers the
webhooks), loads ``recipes/examples`` for that store, and then a simulated shopper buys the last
"Cat Eye Sunglasses": the store sends its webhooks, the out-of-stock recipe runs, and what it did
(with the e-mail that run sent, if any) is printed here.

The sandbox's database (``sous-data/sandbox.db``) is emptied at every start, as the simulated
store starts fresh too; the banner says so. Commands run with ``SOUS_SANDBOX=1`` use it too
(``SOUS_SANDBOX=1 sous keys create --workspace sandbox``), and the running sandbox picks up the
recipes they write there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from fastapi import APIRouter
from pydantic import SecretStr
from sqlmodel import Session, col, select

from api.deps import ContainerDep, CurrentKey
from connectors.email.send import SENT
from connectors.email.sink import CapturedMessage, SmtpSink
from engine.model.recipe import step_uses
from engine.store.db import Tx
from engine.store.models import StepRow
from recipes import library_folder
from sous.container import Container
from sous.output import paint
from sous.settings import SANDBOX_DATABASE, Settings, sandbox_database_url

DEMO_STORE = "sousdemo"
DEMO_TOKEN = "sim-demo-token"  # noqa: S105 - the simulator's published demo token
DEMO_PRODUCT = "Cat Eye Sunglasses"
NEXT_PRODUCT = "Bamboo Sunglasses Case"
"""What the banner's "sell out another product" command sells out: stock tracked on the
product (as the sold-out recipe's condition asks), not on its variants."""
APP_CLIENT_ID = "sous-sandbox-app"
APP_CLIENT_SECRET = "sous-sandbox-app-secret"  # noqa: S105 - the sandbox's own app, printed
"""Sous as a single-click app of the simulated BigCommerce: the banner's install link plays the
control panel's Install button (the OAuth code grant, then the console in the app's frame)."""
RECIPE_CHECK_SECONDS = 1.0
"""How often the sandbox looks for recipes other processes (the CLI) wrote to its database."""


def _sent_from(tx: Tx, *, workspace: str, ids: set[str]) -> set[str]:
    """Which of the Message-IDs ``ids`` Sous sent for ``workspace`` (from the sent log)."""
    if not ids:
        return set()
    query = select(SENT.c.message_id).where(
        SENT.c.workspace_id == workspace, SENT.c.message_id.in_(ids)
    )
    return {str(found) for found in tx.conn.execute(query).scalars()}


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
        self.database: str | None = None
        """The file of the sandbox's own database (``None`` under ``SOUS_DATABASE_URL``)."""
        self.ready = asyncio.Event()
        """Set once the demo store is connected, the example recipes are loaded and the
        banner is printed."""

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
        given = "database_url" in self.settings.model_fields_set
        if database == sandbox_database_url() or not given:
            database = _fresh_database(SANDBOX_DATABASE)
            self.database = str(SANDBOX_DATABASE)
        self.settings = self.settings.model_copy(
            update={
                "database_url": database,
                "smtp_host": "127.0.0.1",
                "smtp_port": self.sink.port,
                "smtp_tls": "none",
                "bigcommerce_client_id": APP_CLIENT_ID,
                "bigcommerce_client_secret": SecretStr(APP_CLIENT_SECRET),
                "bigcommerce_login_url": self.simulator_url,
                "bigcommerce_api_url": self.simulator_url,
                "bigcommerce_app_workspace": "sandbox",
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
        container.sandbox = self
        container.routers.append(self.router())
        task = asyncio.create_task(self._introduce(container))
        self._tasks.add(task)

    async def _introduce(self, container: Container) -> None:
        from api.keys import create_key
        from sous.serve import load_recipe_folder

        settings = container.settings
        api = f"http://{settings.host}:{settings.port}"
        self.api_key = create_key(container.db, "sandbox", ["read", "write", "admin"], "sandbox")
        headers = {"Authorization": f"Bearer {self.api_key}"}
        container.public_base_url = api
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
            install_url = await self._register_app(api)
            examples = library_folder("examples")
            loaded = 0
            if examples is not None:
                loaded = load_recipe_folder(
                    container, examples, workspace="sandbox", store=DEMO_STORE
                )
            self._follow_recipes(container)
            if self._announce:
                self._watch(container)
                next_id = (await self.product(NEXT_PRODUCT) or {}).get("id")
                self._print_welcome(api, loaded, next_id, install_url)
            self.ready.set()
            if self._shopper:
                await asyncio.sleep(1.0)
                await self.sell_out(DEMO_PRODUCT)

    async def _register_app(self, api: str) -> str:
        """Register Sous as an app of the simulated BigCommerce (as in the Developer Portal,
        with Sous's callback URLs); returns the link that installs it on the demo store."""
        callbacks = {
            f"{name}_callback": f"{api}/bigcommerce/{name}"
            for name in ("auth", "load", "uninstall", "remove_user")
        }
        body = {
            "client_id": APP_CLIENT_ID,
            "client_secret": APP_CLIENT_SECRET,
            "scopes": list(self.settings.bigcommerce_app_scopes),
            **callbacks,
        }
        async with httpx.AsyncClient(base_url=self.simulator_url) as control:
            (await control.post("/_sim/apps", json=body)).raise_for_status()
        return f"{self.simulator_url}/_sim/stores/{DEMO_STORE}/apps/{APP_CLIENT_ID}/install"

    def _follow_recipes(self, container: Container) -> None:
        """Reload the recipes when another process (``sous templates instantiate`` run with
        ``SOUS_SANDBOX=1``) changes them in the sandbox's database."""
        from sous.worker import _keep_recipes_fresh

        task = asyncio.create_task(
            _keep_recipes_fresh(container.engine, RECIPE_CHECK_SECONDS), name="sandbox-recipes"
        )
        self._tasks.add(task)

    async def product(self, name: str) -> dict[str, Any] | None:
        """The demo store's product called ``name``, as its catalog API gives it."""
        async with httpx.AsyncClient(
            base_url=f"{self.simulator_url}/stores/{DEMO_STORE}",
            headers={"X-Auth-Token": DEMO_TOKEN},
        ) as sim:
            found = (await sim.get("/v3/catalog/products", params={"name": name})).json()["data"]
        return found[0] if found else None

    async def sell_out(self, name: str) -> None:
        """A shopper buys every unit left of the product called ``name``."""
        product = await self.product(name)
        if product is None:
            return
        left = int(product.get("inventory_level") or 0)
        if self._announce:
            print(paint(f"\nA shopper buys the last {left} of {name} …", "bold"), flush=True)
        async with httpx.AsyncClient(base_url=self.simulator_url) as control:
            await control.post(
                f"/_sim/stores/{DEMO_STORE}/orders",
                json={"lines": [{"product_id": product["id"], "quantity": left}]},
            )

    def router(self) -> APIRouter:
        """``GET /v1/sandbox/messages``: the e-mails the SMTP sink has captured that Sous sent
        for the caller's workspace, newest first.

        A message belongs to the workspace whose ``email.send`` step sent it: the sent log
        (``email_sent``) records the workspace and the Message-ID of every message the SMTP
        server accepted, and the sink keeps the Message-ID it received. Mail Sous did not send
        (or whose sent log row is not written yet) is shown to no one."""
        router = APIRouter(prefix="/v1/sandbox", tags=["sandbox"])
        sink = self.sink

        @router.get(
            "/messages", summary="E-mails sent for this workspace, as the SMTP sink captured them"
        )
        async def messages(caller: CurrentKey, container: ContainerDep) -> dict[str, Any]:
            captured = list(reversed(sink.messages))
            ids = {m.message_id for m in captured if m.message_id}
            ours = await container.db.read(partial(_sent_from, workspace=caller.workspace, ids=ids))
            data = [m.to_dict() for m in captured if m.message_id in ours]
            return {"data": data, "count": len(data)}

        return router

    def _watch(self, container: Container) -> None:
        """Print each finished run of the sandbox's workspace, and then the e-mails it sent.
        The listener runs on the event loop for every run change: it reads nothing there; the
        e-mails of a run whose recipe can send one are looked up in a task of their own."""
        mailing: dict[tuple[str, int | None], bool] = {}

        def on_change(kind: str, data: dict[str, Any]) -> None:
            if kind != "run" or data.get("workspace") != "sandbox":
                return
            status = data.get("status")
            if status in ("succeeded", "succeeded_with_errors", "failed", "loop_stopped"):
                compiled = container.engine.index.by_uid.get(str(data.get("recipe_uid")))
                name = compiled.recipe.id if compiled else data.get("recipe_uid")
                colour = (
                    "green" if status == "succeeded" else "yellow" if status != "failed" else "red"
                )
                print(paint(f"  run {data['id']}  {name}: {status}", colour), flush=True)
                if compiled is None:
                    return
                recipe = compiled.recipe
                key = (recipe.id, recipe.version)
                if key not in mailing:
                    mailing[key] = "email.send" in step_uses(recipe.document()["actions"])
                if mailing[key]:
                    task = asyncio.get_running_loop().create_task(
                        self._print_mails(container, str(data["id"]))
                    )
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

        container.engine.subscribe(on_change)

    async def _print_mails(self, container: Container, run_id: str) -> None:
        for mail in await self.mails_of(container, run_id):
            print(f"    e-mail to {', '.join(mail.to)}: {mail.subject}", flush=True)

    async def mails_of(self, container: Container, run_id: str) -> list[CapturedMessage]:
        """The e-mails the sink captured from run ``run_id`` (its steps' ``message_id``)."""

        def sent_by(session: Session) -> set[Any]:
            outputs = session.exec(select(StepRow.output).where(col(StepRow.run_id) == run_id))
            return {o.get("message_id") for o in outputs if isinstance(o, dict)} - {None}

        sent = await container.db.query(sent_by)
        return [m for m in self.sink.messages if m.message_id in sent]

    def _print_welcome(self, api: str, loaded: int, next_id: int | None, install_url: str) -> None:
        key = f"-H 'Authorization: Bearer {self.api_key}'"
        if self.database is None:
            database = "the one SOUS_DATABASE_URL or --database-url names"
        else:
            database = f"{self.database}, emptied at every start (the simulated store is new too)"
        lines = [
            "",
            paint("Sous sandbox is ready", "bold"),
            f"  console:            {api}/console/  (sign in with the key below)",
            f"  API and docs:       {api}/docs",
            f"  API key (sandbox):  {self.api_key}",
            f"  database:           {database}",
            f"  store simulator:    {self.simulator_url}/stores/{DEMO_STORE}  (token {DEMO_TOKEN})",
            f"  simulator control:  {self.simulator_url}/_sim/docs",
            f"  SMTP sink:          127.0.0.1:{self.sink.port}",
            f"  captured e-mail:    GET {api}/v1/sandbox/messages",
            f"  example recipes:    {loaded} loaded from recipes/examples",
            "",
            "Next: list runs with",
            f"  curl {key} {api}/v1/runs",
            f"sell out another product ({NEXT_PRODUCT}) with",
            f"  curl -X PUT {self.simulator_url}/_sim/stores/{DEMO_STORE}/stock \\",
            "       -H 'Content-Type: application/json' -d "
            f'\'{{"product_id": {next_id}, "level": 0}}\'',
            "install Sous as a BigCommerce app on the demo store (the control panel's Install "
            "button: the OAuth code grant, then the console, signed in as the store's owner) by "
            "opening",
            f"  {install_url}",
            "and reach this sandbox's database from the command line (keys, templates, packs) with",
            "  SOUS_SANDBOX=1 sous keys create --workspace sandbox",
        ]
        print("\n".join(lines), flush=True)
