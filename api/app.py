"""The HTTP API: :func:`create_app` builds it around a :class:`~sous.container.Container`.

Nothing happens at import time. The app does not start or stop the engine: whoever serves it
starts ``container.engine`` on the same event loop (so live notifications and the in-process
queue are shared).
"""

from __future__ import annotations

import importlib.metadata

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import console, errors, openapi
from api.deps import SandboxLike, known_query_only
from api.middleware import Guard
from api.routes import (
    approvals,
    audit,
    backtest,
    catalog,
    dryrun,
    events,
    health,
    hooks,
    keys,
    metrics,
    recipes,
    runs,
    secrets,
    stores,
    stream,
    testruns,
    usage,
    workspaces,
)
from sous.container import Container

DESCRIPTION = """\
Workflow automation for BigCommerce stores: trigger → conditions → actions *recipes*.

Authenticate with an API key: `Authorization: Bearer sous_…` (create one with
`sous keys create`). Scopes nest: `admin` ⊃ `write` ⊃ `read`. Everything is scoped to the key's
workspace: another workspace's resources answer 404.

**Agencies.** An agency key (`sous keys create --agency`, or `POST /v1/keys` with
`"agency": true` by an agency key) creates client workspaces (`POST /v1/workspaces`) and acts in
one of them by naming it in the header `Sous-Workspace: <workspace id>` on any request; without
the header it acts in its own workspace. It never reaches a workspace that is not its client:
another one answers 404, and a key that is not an agency key naming another workspace gets 403.
A key may be limited to some stores (`"stores": ["abc123"]`): it sees only their recipes,
events and runs, and routes that span the whole workspace answer 403 `store_limited_key`.

**Audit and usage.** Every change is in the workspace's audit log (`GET /v1/audit`) with who
made it; send `Sous-Reason: <why>` with a change to keep the reason there and in the recipe's
version. `GET /v1/usage` counts runs, steps, store requests, e-mails and HTTP calls per day,
store and recipe; a workspace at one of its daily limits gets 429 `usage_limit_reached`.

Errors share one body: `{"error": {"code", "message", "details": [{"path", "message"}],
"request_id"}}`, where `path` is a JSON Pointer into the request body. Lists are
`{data, next_cursor}`; pass `next_cursor` back as `cursor`. Times are ISO 8601 in UTC.
"""

ROUTERS = (
    health.router,
    metrics.router,
    workspaces.router,
    workspaces.agency_router,
    keys.router,
    audit.router,
    usage.router,
    secrets.router,
    stores.router,
    recipes.router,
    dryrun.router,
    backtest.router,
    testruns.router,
    events.router,
    hooks.router,
    runs.router,
    approvals.router,
    catalog.router,
    stream.router,
)


def _version() -> str:
    try:
        return importlib.metadata.version("sous")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


def create_app(container: Container, *, sandbox: SandboxLike | None = None) -> FastAPI:
    """The API for ``container``; ``sandbox`` points store connections at a simulator."""
    app = FastAPI(
        title="Sous", version=_version(), description=DESCRIPTION, docs_url=None, redoc_url=None
    )
    app.state.container = container
    app.state.sandbox = sandbox
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router, dependencies=[Depends(known_query_only)])
    for router in container.routers:
        app.include_router(router)
    openapi.install(app)
    console.install(app)  # the web console, and /docs served offline
    app.add_middleware(openapi.LocationHeader)
    app.add_middleware(Guard, max_body_bytes=container.settings.max_body_bytes)
    if container.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=container.settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "X-Request-ID",
                "Sous-Workspace",
            ],
            expose_headers=["ETag", "X-Request-ID"],
        )
    return app
