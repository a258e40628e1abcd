"""Sous as a BigCommerce single-click app: the four callbacks the store control panel calls
(auth.mdx, callbacks.mdx, users.mdx).

* ``GET /bigcommerce/auth`` (the browser, on install): check the scopes, exchange the code for
  the store's token (through the outbound guard), keep the token encrypted, connect the store
  (its webhooks registered as for any connected store), create the storefront backorder script
  (:mod:`connectors.backorder.script`), open a console session for the installing user and
  send the iframe to the console.
* ``GET /bigcommerce/load`` (the browser, when a user opens the app): verify the signed
  payload, add the user if Sous has not seen them, open a console session for them.
* ``GET /bigcommerce/uninstall`` (BigCommerce's server): verify, remove the store's webhooks and
  scripts, disconnect the store (its token is erased with its row), end its users' sessions.
* ``GET /bigcommerce/remove_user`` (BigCommerce's server): verify, forget the user and end
  their sessions.

A payload that is forged, expired, for another app or otherwise invalid is answered 401.
Browser callbacks answer HTML (a page saying what to do); server callbacks answer JSON.

Inside the control panel the console is a cross-site iframe: over https its session cookie is
``SameSite=None; Secure`` (and partitioned), see :func:`api.console.auth.set_session_cookie`.
The store's owner and whoever installed the app get an ``admin`` session; other users of the
store ``read`` and ``write``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import delete
from sqlmodel import col
from starlette.concurrency import run_in_threadpool

from api.connect import finish_soon, register_webhooks, verify
from api.console.auth import Opened, is_https, open_session, safe_next, set_session_cookie
from api.console.render import error_page
from api.deps import ContainerDep
from api.errors import ApiError, request_id_of
from api.tables import ConsoleSessionRow
from connectors.backorder.config import BackorderSettings
from connectors.backorder.script import StorefrontScripts
from connectors.backorder.service import Backorders
from connectors.bigcommerce.errors import BigCommerceError
from connectors.bigcommerce.single_click import installs
from connectors.bigcommerce.single_click.installs import CallbackRefused, Installed
from connectors.bigcommerce.single_click.oauth import (
    InstallRefused,
    check_scopes,
    exchange_code,
    store_of,
)
from connectors.bigcommerce.single_click.signed import (
    InvalidPayload,
    SignedPayload,
    verify as verify_payload,
)
from connectors.bigcommerce.stores import BigCommerceStores
from connectors.http.guard import GuardedTransport, OutboundPolicy
from engine import Cipher, NotFoundError, StoreRow
from sous.container import Container
from sous.settings import LOOPBACK_HOSTS

log = logging.getLogger("sous.api")
router = APIRouter(prefix="/bigcommerce", include_in_schema=False)
ADMIN = ["read", "write", "admin"]
USER = ["read", "write"]


@dataclass(frozen=True)
class AppConfig:
    client_id: str
    client_secret: str
    login_url: str
    api_url: str
    public_url: str
    scopes: list[str]
    workspace: str

    @property
    def redirect_uri(self) -> str:
        """The auth callback registered in the app profile (the token request repeats it)."""
        return f"{self.public_url}/bigcommerce/auth"


def app_config(container: Container) -> AppConfig:
    settings = container.settings
    secret = settings.bigcommerce_client_secret
    if not settings.bigcommerce_client_id or secret is None:
        raise CallbackRefused(
            503,
            "this Sous is not set up as a BigCommerce app (SOUS_BIGCOMMERCE_CLIENT_ID and "
            "SOUS_BIGCOMMERCE_CLIENT_SECRET)",
        )
    public = settings.bigcommerce_public_base_url or container.base_url()
    return AppConfig(
        client_id=settings.bigcommerce_client_id,
        client_secret=secret.get_secret_value(),
        login_url=settings.bigcommerce_login_url,
        api_url=settings.bigcommerce_api_url,
        public_url=public.rstrip("/"),
        scopes=list(settings.bigcommerce_app_scopes),
        workspace=settings.bigcommerce_app_workspace,
    )


def _outbound(request: Request, container: Container, url: str) -> GuardedTransport:
    """The outbound guard, as for every request Sous makes for a user; a sandbox's simulator
    on a loopback address is let through (the sandbox plays BigCommerce there)."""
    policy = container.services.find(OutboundPolicy) or OutboundPolicy.from_settings(
        container.settings
    )
    host = urlsplit(url).hostname or ""
    if request.app.state.sandbox is not None and host in LOOPBACK_HOSTS:
        policy = dataclasses.replace(policy, allow_hosts=(*policy.allow_hosts, host))
    return GuardedTransport(policy)


def _page(request: Request, status: int, message: str) -> Response:
    titles = {
        400: "The install could not finish",
        401: "This link is not valid",
        403: "Not allowed",
        404: "Sous is not installed on this store",
        502: "BigCommerce could not be reached",
        503: "Sous is not set up as an app",
    }
    advice = message[:1].upper() + message[1:] + "."
    title = titles.get(status, "That did not work")
    return error_page(request, status, title, advice, request_id_of(request))


def _into_console(
    request: Request, config: AppConfig, opened: Opened, target: str = "/console/"
) -> Response:
    """Into the console, signed in; its cookie must cross into the control panel's iframe."""
    response = RedirectResponse(target, status_code=303)
    embedded = is_https(request) or config.public_url.startswith("https://")
    set_session_cookie(response, request, opened, embedded=embedded)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _open(container: Container, workspace: str, user: str, admin: bool) -> Opened:
    return open_session(
        container.db,
        workspace,
        scopes=ADMIN if admin else USER,
        now=container.clock.now(),
        user_id=user,
    )


# -- install -------------------------------------------------------------------------------------
@router.get("/auth")
async def auth(
    request: Request,
    container: ContainerDep,
    code: str = "",
    scope: str = "",
    context: str = "",
    account_uuid: str = "",
) -> Response:
    try:
        return await _install(request, container, code, scope, context)
    except (InstallRefused, CallbackRefused) as exc:
        return _page(request, exc.status, str(exc))


async def _install(
    request: Request, container: Container, code: str, scope: str, context: str
) -> Response:
    config = app_config(container)
    if not code or not scope or not context:
        raise InstallRefused(400, "the install callback needs code, scope and context")
    store_hash = store_of(context)
    check_scopes(scope, config.scopes)  # before the code is spent
    grant = await exchange_code(
        login_url=config.login_url,
        client_id=config.client_id,
        client_secret=config.client_secret,
        code=code,
        scope=scope,
        context=context,
        redirect_uri=config.redirect_uri,
        configured_scopes=config.scopes,
        transport=_outbound(request, container, config.login_url),
    )
    base = f"{config.api_url}/stores/{store_hash}"
    sandbox = request.app.state.sandbox
    try:
        info = await verify(store_hash, grant.access_token, base, container.clock, sandbox)
    except ApiError as exc:
        raise InstallRefused(502, f"the store did not answer with its new token: {exc}") from None
    name = str(info.get("name") or store_hash)[:200]

    def save() -> Installed:
        with container.db.session() as session:
            return installs.save_install(
                session,
                _cipher(container),
                grant,
                policy=config.workspace,
                api_base_url=base,
                name=name,
                now=container.clock.now(),
            )

    done = await run_in_threadpool(save)
    await _connect(container, done, grant.access_token)
    await _storefront(container, done.workspace, store_hash, remove=False)
    user = installs.session_user(store_hash, grant.user.id)
    opened = await run_in_threadpool(_open, container, done.workspace, user, True)
    return _into_console(request, config, opened)


def _cipher(container: Container) -> Cipher:
    return Cipher(container.settings.secret_key.get_secret_value())


async def _connect(container: Container, done: Installed, token: str) -> None:
    """Register the store's webhooks as ``POST /v1/stores`` does (a late end is saved)."""
    row = done.store

    def save(store_id: str, status: str, info: dict[str, Any]) -> None:
        with container.db.session() as session:
            found = session.get(StoreRow, store_id)
            if found is not None:
                found.status, found.info = status, info
                session.add(found)
                session.commit()

    async def save_late(store_id: str, status: str, info: dict[str, Any]) -> None:
        await run_in_threadpool(save, store_id, status, info)

    if await register_webhooks(container.stores, row, token, done.webhook_secret, save_late):
        await run_in_threadpool(save, row.id, row.status, dict(row.info or {}))


# -- load, uninstall, remove_user -----------------------------------------------------------------
def _verified(container: Container, token: str) -> SignedPayload:
    config = app_config(container)
    if not token:
        raise InvalidPayload("signed_payload_jwt is missing")
    return verify_payload(
        token,
        client_id=config.client_id,
        client_secret=config.client_secret,
        now=container.clock.now().timestamp(),
    )


@router.get("/load")
async def load(request: Request, container: ContainerDep, signed_payload_jwt: str = "") -> Response:
    try:
        config = app_config(container)
        payload = _verified(container, signed_payload_jwt)

        def record() -> tuple[str, bool]:
            with container.db.session() as session:
                install = installs.record_load(session, payload, container.clock.now())
                admin = payload.by_owner or payload.user.id == install.installed_by
                return install.workspace_id, admin

        workspace, admin = await run_in_threadpool(record)
    except InvalidPayload as exc:
        return _page(request, 401, str(exc))
    except CallbackRefused as exc:
        return _page(request, exc.status, str(exc))
    user = installs.session_user(payload.store_hash, payload.user.id)
    opened = await run_in_threadpool(_open, container, workspace, user, admin)
    target = safe_next("/console" + payload.url) if payload.url.startswith("/") else "/console/"
    return _into_console(request, config, opened, target)


def _refused(exc: Exception) -> ApiError:
    if isinstance(exc, InvalidPayload):
        return ApiError(401, str(exc))
    if isinstance(exc, CallbackRefused):
        return ApiError(exc.status, str(exc))
    raise exc


@router.get("/uninstall")
async def uninstall(container: ContainerDep, signed_payload_jwt: str = "") -> JSONResponse:
    try:
        payload = _verified(container, signed_payload_jwt)

        def check() -> tuple[str, str]:
            with container.db.read_session() as session:
                install = installs.check_uninstall(session, payload)
                return install.workspace_id, install.store_id

        workspace, _store_id = await run_in_threadpool(check)
    except (InvalidPayload, CallbackRefused) as exc:
        raise _refused(exc) from None
    await _storefront(container, workspace, payload.store_hash, remove=True)
    await finish_soon(_unregister(container, workspace, payload.store_hash))

    def forget() -> None:
        with container.db.session() as session:
            users = installs.forget_install(session, payload.store_hash)
            _end_sessions(session, users)
            session.commit()

    await run_in_threadpool(forget)
    return JSONResponse({"uninstalled": payload.store_hash})


@router.get("/remove_user")
async def remove_user(container: ContainerDep, signed_payload_jwt: str = "") -> JSONResponse:
    try:
        payload = _verified(container, signed_payload_jwt)

        def remove() -> bool:
            with container.db.session() as session:
                user = installs.remove_user(session, payload)
                if user is not None:
                    _end_sessions(session, [user])
                session.commit()
                return user is not None

        removed = await run_in_threadpool(remove)
    except (InvalidPayload, CallbackRefused) as exc:
        raise _refused(exc) from None
    return JSONResponse({"removed": removed, "user": payload.user.id})


def _scripts(container: Container) -> StorefrontScripts:
    backorders = container.services.find(Backorders)
    if backorders is not None:
        return backorders.scripts
    return StorefrontScripts(container.db, container.clock, BackorderSettings())


async def _storefront(
    container: Container, workspace: str, store_hash: str, *, remove: bool
) -> None:
    """Install: create (or repair) the storefront backorder script. Uninstall: delete it, with
    the store's token, before BigCommerce revokes it. A failure is logged: the store's scripts
    are not worth a failed install, and BigCommerce removes ``auto_uninstall`` scripts anyway."""
    stores = container.services.find(BigCommerceStores)
    if stores is None:
        return
    try:
        client = (await stores.get(workspace, store_hash)).client
        if remove:
            await _scripts(container).remove(client, workspace, store_hash)
        else:
            await _scripts(container).refresh(client, workspace, store_hash, repair=True)
    except (BigCommerceError, NotFoundError) as exc:
        log.warning(
            "store %s: storefront script not %s: %s",
            store_hash,
            "removed" if remove else "written",
            exc,
        )


async def _unregister(container: Container, workspace: str, store_hash: str) -> None:
    """Remove the store's webhooks with its token (paced by its quota: it may end after the
    answer). The store is opened first: this process may not have used it yet."""
    stores = container.services.find(BigCommerceStores)
    if stores is not None:
        with contextlib.suppress(NotFoundError):
            await stores.get(workspace, store_hash)
    if container.stores is not None:
        await container.stores.unregister(workspace=workspace, store_hash=store_hash)


def _end_sessions(session: Any, users: list[str]) -> None:
    if users:
        session.exec(delete(ConsoleSessionRow).where(col(ConsoleSessionRow.user_id).in_(users)))
