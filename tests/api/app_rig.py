"""Sous as a BigCommerce app, end to end: the store simulator (BigCommerce's login, control
panel and store API) and the whole Sous app (API, console, webhooks, app callbacks), each
served by uvicorn on a loopback port, sharing one ManualClock, with a real SQLite database.

A test plays the merchant's browser (an httpx client keeping cookies) and the control panel
(the simulator's ``/_sim`` endpoints)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlmodel import select

from api.app import create_app
from api.console.auth import COOKIE, Visitor, find_session
from connectors.bigcommerce.simulator import SimulatorConfig, create_simulator, simulator_of
from connectors.bigcommerce.simulator.apps import sign_jwt
from connectors.bigcommerce.simulator.simulator import Simulator
from connectors.bigcommerce.simulator.state import Store
from connectors.bigcommerce.single_click.models import BcAppInstallRow, BcAppUserRow
from connectors.bigcommerce.stores import BigCommerceConfig
from engine import Engine, EngineSettings
from engine.clock import ManualClock
from engine.context import Services
from engine.registry import Registry
from engine.store.db import Database
from engine.store.models import StoreRow
from sous.container import Container, connectors
from sous.sandbox import free_port
from sous.settings import BIGCOMMERCE_APP_SCOPES, Settings
from sous.tables import import_all_tables
from sous.wiring import wire
from tests.servers import serve

CLIENT_ID = "sous-app-client"
CLIENT_SECRET = "sous-app-secret-0123456789"
SECRET_KEY = "tests-only-secret-key"
SCOPES = list(BIGCOMMERCE_APP_SCOPES)


@dataclass
class AppRig:
    clock: ManualClock
    sim: Simulator
    sim_url: str
    sous_url: str
    store: Store
    container: Container
    http: httpx.AsyncClient
    browsers: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def db(self) -> Database:
        return self.container.db

    def browser(self) -> httpx.AsyncClient:
        """A new browser: its own cookies, no redirects followed unless asked."""
        browser = httpx.AsyncClient(timeout=30)
        self.browsers.append(browser)
        return browser

    def control(self, path: str) -> str:
        return f"{self.sim_url}/_sim/stores/{self.store.store_hash}{path}"

    async def install(
        self, browser: httpx.AsyncClient, user_id: int | None = None, store: Store | None = None
    ) -> httpx.Response:
        """The control panel's install, then the browser following it to Sous's auth callback
        (Sous's answer is returned, not followed)."""
        store = store or self.store
        params = {"user_id": user_id} if user_id is not None else {}
        start = f"{self.sim_url}/_sim/stores/{store.store_hash}/apps/{CLIENT_ID}/install"
        panel = await browser.get(start, params=params)
        assert panel.status_code == 302, panel.text
        return await browser.get(panel.headers["location"])

    async def load_url(self, user_id: int | None = None, url: str = "/") -> str:
        params: dict[str, Any] = {"url": url}
        if user_id is not None:
            params["user_id"] = user_id
        panel = await self.http.get(self.control(f"/apps/{CLIENT_ID}/load"), params=params)
        assert panel.status_code == 302, panel.text
        return panel.headers["location"]

    async def load(self, browser: httpx.AsyncClient, user_id: int | None = None) -> httpx.Response:
        return await browser.get(await self.load_url(user_id))

    async def add_user(self, email: str, *, can_install: bool = False, **more: Any) -> int:
        body = {"email": email, "can_install": can_install, **more}
        answer = await self.http.post(self.control("/users"), json=body)
        assert answer.status_code == 201, answer.text
        user_id: int = answer.json()["id"]
        return user_id

    async def give_app(self, user_id: int) -> None:
        answer = await self.http.post(self.control(f"/apps/{CLIENT_ID}/users/{user_id}"))
        assert answer.status_code == 204, answer.text

    async def remove_user(self, user_id: int) -> dict[str, Any]:
        answer = await self.http.delete(self.control(f"/apps/{CLIENT_ID}/users/{user_id}"))
        assert answer.status_code == 200, answer.text
        callback: dict[str, Any] = answer.json()["callback"]
        return callback

    async def uninstall(self, user_id: int | None = None) -> dict[str, Any]:
        params = {"user_id": user_id} if user_id is not None else {}
        answer = await self.http.delete(self.control(f"/apps/{CLIENT_ID}"), params=params)
        assert answer.status_code == 200, answer.text
        callback: dict[str, Any] = answer.json()["callback"]
        return callback

    def owner_id(self, store: Store | None = None) -> int:
        return self.sim.apps.owner(store or self.store).id

    def claims(self, user_id: int | None = None, **changes: Any) -> dict[str, Any]:
        """Claims as the simulator signs them, with ``changes`` on top (for forging)."""
        app = self.sim.apps.app(CLIENT_ID)
        user = self.sim.apps.user(self.store, user_id)
        return {**self.sim.apps.claims(app, self.store, user), **changes}

    def signed(self, claims: dict[str, Any], secret: str = CLIENT_SECRET, **header: Any) -> str:
        return sign_jwt(claims, secret, header or None)

    def visitor(self, response: httpx.Response) -> Visitor | None:
        """Whose session the cookie ``response`` set stands for now (None: ended)."""
        token = session_token(response)
        assert token, f"no {COOKIE} cookie in {response.headers}"
        return find_session(self.db, token, self.clock.now())

    def store_row(self, store_hash: str | None = None) -> StoreRow | None:
        with self.db.session() as s:
            query = select(StoreRow).where(StoreRow.store_hash == (store_hash or self.store_hash))
            return s.exec(query).first()

    def install_row(self) -> BcAppInstallRow | None:
        with self.db.session() as s:
            return s.get(BcAppInstallRow, self.store_hash)

    def users(self) -> dict[int, BcAppUserRow]:
        with self.db.session() as s:
            rows = s.exec(select(BcAppUserRow).where(BcAppUserRow.store_hash == self.store_hash))
            return {row.user_id: row for row in rows}

    @property
    def store_hash(self) -> str:
        return self.store.store_hash

    def our_hooks(self, store: Store | None = None) -> list[Any]:
        return [
            h
            for h in (store or self.store).hooks.values()
            if h.destination.startswith(self.sous_url)
        ]


def session_token(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        if COOKIE in cookie:
            return cookie[COOKIE].value
    return None


@contextlib.asynccontextmanager
async def app_rig(
    tmp_path: Path,
    *,
    sim_scopes: list[str] | None = None,
    configured: bool = True,
    **settings: Any,
) -> AsyncIterator[AppRig]:
    """The simulator (one seeded store, the app registered with Sous's callback URLs) and Sous
    configured as that app; ``settings`` go to Sous's :class:`Settings`."""
    clock = ManualClock()
    sim_app = create_simulator(
        SimulatorConfig(clock=clock, seed=False, webhook_workers=2, webhook_timeout_s=5)
    )
    sim = simulator_of(sim_app)
    store = sim.add_store(seed=True, name="Acme Outdoor")
    port = free_port()
    sous_url = f"http://127.0.0.1:{port}"
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(sim.aclose)
        sim_url = await stack.enter_async_context(serve(sim_app))
        app = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET} if configured else {}
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path / 'sous.db'}",
            "secret_key": SecretStr(SECRET_KEY),
            "bigcommerce_client_id": app.get("client_id"),
            "bigcommerce_client_secret": app.get("client_secret"),
            "bigcommerce_login_url": sim_url,
            "bigcommerce_api_url": sim_url,
            "outbound_allow_hosts": ["127.0.0.1"],
            **settings,
        }
        container = _container(Settings(**values), clock)
        stack.callback(container.db.dispose)
        container.public_base_url = sous_url
        await wire(container, stack)  # the connectors, backorders (storefront script) too
        await container.engine.start(workers=2)
        stack.push_async_callback(container.engine.stop)
        await stack.enter_async_context(serve(create_app(container), port))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        sim.apps.register(
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "scopes": sim_scopes or SCOPES,
                "auth_callback": f"{sous_url}/bigcommerce/auth",
                "load_callback": f"{sous_url}/bigcommerce/load",
                "uninstall_callback": f"{sous_url}/bigcommerce/uninstall",
                "remove_user_callback": f"{sous_url}/bigcommerce/remove_user",
            }
        )
        rig = AppRig(clock, sim, sim_url, sous_url, store, container, http)
        try:
            yield rig
        finally:
            for browser in rig.browsers:
                await browser.aclose()


def _container(settings: Settings, clock: ManualClock) -> Container:
    import_all_tables()
    db = Database(settings.database_url)
    db.create_all()
    registry = Registry(list(connectors()))
    services = Services()
    engine = Engine(db, registry, clock=clock, services=services, settings=EngineSettings())
    config = BigCommerceConfig(read_window=0.0, reconcile_interval=3600.0)
    return Container(settings, db, registry, engine, services, clock, bigcommerce=config)
