"""Dependencies as ``Annotated`` aliases, so handlers read as plain sentences:
``def show(recipe_id: str, workspace: WorkspaceDep, container: ContainerDep)``.

Dependencies that do no blocking I/O are ``async def``: FastAPI runs a plain ``def`` dependency
in its thread pool, a thread hop per dependency on every request."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Annotated, Protocol, TypeVar

import httpx
from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api.errors import ApiError, ErrorItem, not_found
from api.keys import Caller, Scope, authenticate, client_of, hash_key
from engine import (
    Cipher,
    Clock,
    Database,
    Engine,
    Registry,
    StoreConnector,
    Vault,
    set_actor,
)
from sous.container import Container
from sous.settings import Settings

T = TypeVar("T")


class SandboxLike(Protocol):
    """What the API needs of a sandbox (``sous serve --sandbox``).

    ``store_base_url`` is the store simulator's API base (``{store_hash}`` is filled in):
    stores connected without a base URL get it, and base URLs under it are accepted.
    ``transport``, when set, reaches the simulator (or a test double) instead of the network.
    """

    @property
    def store_base_url(self) -> str: ...

    @property
    def transport(self) -> httpx.AsyncBaseTransport | None: ...


@dataclass(frozen=True)
class Sandbox:
    """A plain :class:`SandboxLike`."""

    store_base_url: str
    transport: httpx.AsyncBaseTransport | None = None


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_engine(container: ContainerDep) -> Engine:
    return container.engine


async def get_database(container: ContainerDep) -> Database:
    return container.db


async def get_clock(container: ContainerDep) -> Clock:
    return container.clock


async def get_registry(container: ContainerDep) -> Registry:
    return container.registry


async def get_settings(container: ContainerDep) -> Settings:
    return container.settings


EngineDep = Annotated[Engine, Depends(get_engine)]
DatabaseDep = Annotated[Database, Depends(get_database)]
ClockDep = Annotated[Clock, Depends(get_clock)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_sandbox(request: Request) -> SandboxLike | None:
    sandbox: SandboxLike | None = request.app.state.sandbox
    return sandbox


SandboxDep = Annotated[SandboxLike | None, Depends(get_sandbox)]


def get_session(container: ContainerDep) -> Iterator[Session]:
    with container.db.read_session() as session:
        yield session


# scope="function": the session closes when the handler returns, before the answer is sent, so no
# transaction outlives the work that needed it.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
"""A read-only session: it never holds nor waits for the write lock. A handler that writes opens
``db.session()`` in a ``with`` block of its own: a dependency's teardown runs only when the event
loop schedules it, and a write lock held until then could wait on a loop that waits on the lock."""


async def get_cipher(container: ContainerDep) -> Cipher:
    return Cipher(container.settings.secret_key.get_secret_value())


CipherDep = Annotated[Cipher, Depends(get_cipher)]


def get_vault(container: ContainerDep, cipher: CipherDep) -> Vault:
    return container.services.find(Vault) or Vault(container.db, cipher, container.clock)


VaultDep = Annotated[Vault, Depends(get_vault)]

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer sous_…`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def get_stores(container: ContainerDep) -> StoreConnector | None:
    return container.stores


StoresDep = Annotated[StoreConnector | None, Depends(get_stores)]
"""The store connector (BigCommerce), or ``None`` when none is wired."""


def key_cache(request: Request) -> dict[str, tuple[Caller, float]]:
    """This app's cache of checked keys: digest → (caller, monotonic expiry)."""
    app = request.app
    if not hasattr(app.state, "key_cache"):
        app.state.key_cache = {}
    cache: dict[str, tuple[Caller, float]] = app.state.key_cache
    return cache


KEY_CACHE_SECONDS = 5.0
"""How long a checked key is trusted without reading the database again (a revoked key stops
working in this process at once, and in other processes within this time)."""


WORKSPACE_HEADER = "Sous-Workspace"
REASON_HEADER = "Sous-Reason"
"""Why a change is made: kept with the recipe version and in the audit log."""
STORE_AWARE: set[object] = set()
"""The route handlers that keep a store-limited key to its stores (see :func:`store_aware`);
every other route refuses such a key."""


def store_aware(handler: T) -> T:
    """Mark a route handler as one that shows a store-limited key only its stores (it filters
    by :meth:`~api.keys.Caller.sees`); a key limited to stores is refused everywhere else."""
    STORE_AWARE.add(handler)
    return handler


def _remember(cache: dict[str, tuple[Caller, float]], key: str, caller: Caller, now: float) -> None:
    if len(cache) > 10_000:
        cache.clear()
    cache[key] = (caller, now + KEY_CACHE_SECONDS)


async def _key_caller(request: Request, container: Container, key: str) -> Caller:
    cache = key_cache(request)
    digest = hash_key(key)
    hit = cache.get(digest)
    now = container.clock.monotonic()
    if hit is not None and hit[1] > now:
        return hit[0]
    caller = await run_in_threadpool(authenticate, container.db, key, container.clock.now())
    if caller is None:
        raise ApiError(
            401, "the API key is unknown or revoked, or its workspace archived", headers=_CHALLENGE
        )
    _remember(cache, digest, caller, now)
    return caller


async def _acting_in(request: Request, container: Container, caller: Caller, name: str) -> Caller:
    """``caller`` acting in the workspace ``name`` (the ``Sous-Workspace`` header): only an
    agency key, and only in a client workspace of its own (404 for any other)."""
    if not caller.agency:
        raise ApiError(
            403,
            f"only an agency key can act in another workspace ({WORKSPACE_HEADER}: {name})",
            code="not_an_agency_key",
        )
    cache = key_cache(request)
    slot = f"{caller.key_id}/{name}"
    hit = cache.get(slot)
    now = container.clock.monotonic()
    if hit is not None and hit[1] > now:
        return hit[0]
    found = await run_in_threadpool(client_of, container.db, caller.home, name)
    if found is None:
        raise not_found("workspace", name)
    if found.archived_at is not None:
        raise ApiError(
            409,
            f"workspace {name!r} is archived: unarchive it first "
            f'(PATCH /v1/workspaces/{name} {{"archived": false}}, without {WORKSPACE_HEADER})',
            code="workspace_archived",
        )
    acting = replace(caller, workspace=found.id)
    _remember(cache, slot, acting, now)
    return acting


async def current_key(
    request: Request,
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    workspace: Annotated[
        str | None,
        Header(
            alias=WORKSPACE_HEADER,
            max_length=64,
            description="An agency key: the client workspace to act in (default: its own)",
        ),
    ] = None,
) -> Caller:
    """The caller, acting in its own workspace or (an agency key) in the one the
    ``Sous-Workspace`` header names: the one place every route learns whose data it serves."""
    if credentials is None:
        raise ApiError(401, "send an API key: Authorization: Bearer sous_…", headers=_CHALLENGE)
    caller = await _key_caller(request, container, credentials.credentials)
    if workspace is not None and workspace != caller.home:
        caller = await _acting_in(request, container, caller, workspace)
    set_actor(caller.actor, request.headers.get(REASON_HEADER))
    route = request.scope.get("route")
    if caller.stores is not None and getattr(route, "endpoint", None) not in STORE_AWARE:
        raise ApiError(
            403,
            f"this API key is limited to the stores {', '.join(sorted(caller.stores))}; "
            "this route spans the whole workspace: use a key without a store limit",
            code="store_limited_key",
        )
    return caller


CurrentKey = Annotated[Caller, Depends(current_key)]


async def _workspace(key: CurrentKey) -> str:
    return key.workspace


WorkspaceDep = Annotated[str, Depends(_workspace)]
"""The caller's workspace id: every query is scoped to it."""


def _require(scope: Scope) -> object:
    async def check(key: CurrentKey) -> Caller:
        if not key.can(scope):
            raise ApiError(403, f"this API key lacks the {scope!r} scope")
        return key

    return Depends(check)


RequireWrite = Annotated[Caller, _require("write")]
RequireAdmin = Annotated[Caller, _require("admin")]


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def known_query_only(request: Request) -> None:
    """Refuse query parameters the route does not take (a typo would otherwise filter nothing),
    and any given twice (none of these routes takes a list)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    given = Counter(name for name, _ in request.query_params.multi_items())
    if not given:
        return
    known = _query_names(route.dependant)
    details = [
        ErrorItem(path=f"query.{name}", message=_QUERY_PROBLEM[name in known])
        for name, times in sorted(given.items())
        if name not in known or times > 1
    ]
    if details:
        raise ApiError(422, "the request is invalid", details=details)


_QUERY_PROBLEM = {False: "unknown query parameter", True: "given more than once"}
