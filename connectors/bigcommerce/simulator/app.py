"""The FastAPI application: :func:`create_simulator` and error handling in BigCommerce's formats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from . import (
    routes_apps,
    routes_catalog,
    routes_control,
    routes_customers,
    routes_hooks,
    routes_inventory,
    routes_orders,
    routes_scripts,
    routes_store,
    routes_variants,
)
from .config import SimulatorConfig
from .formats import ApiError, error_body
from .gateway import Gateway, version_of
from .simulator import Simulator


def simulator_of(app: FastAPI) -> Simulator:
    """The :class:`Simulator` behind an app made by :func:`create_simulator`."""
    return cast(Simulator, app.state.simulator)


def _answer(request: Request, err: ApiError) -> JSONResponse:
    path = request.url.path
    version = version_of(path)
    body = error_body(version, err)
    media = err.media_type if not path.startswith("/_sim") else "application/json"
    return JSONResponse(body, err.status, media_type=media)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    return _answer(request, cast(ApiError, exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    http = cast(HTTPException, exc)
    title = "The requested resource was not found." if http.status_code == 404 else str(http.detail)
    return _answer(request, ApiError(http.status_code, title))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    errors = cast(RequestValidationError, exc).errors()
    if any(err["loc"] and err["loc"][0] == "path" for err in errors):
        return _answer(request, ApiError(404, "The requested resource was not found."))
    fields = {".".join(str(p) for p in err["loc"]): str(err["msg"]) for err in errors}
    return _answer(request, ApiError(422, "JSON data is missing or invalid", fields))


def create_simulator(config: SimulatorConfig | None = None) -> FastAPI:
    """A new simulated BigCommerce (with the demo store unless ``config.seed`` is False).

    Nothing runs at import time; the app's :class:`Simulator` is ``simulator_of(app)``.
    """
    sim = Simulator(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await sim.aclose()

    app = FastAPI(
        title="BigCommerce store simulator",
        description="BigCommerce's REST API for Sous's sandbox, tests and benchmarks.",
        lifespan=lifespan,
        openapi_url="/_sim/openapi.json",
        docs_url="/_sim/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.simulator = sim
    for module in (
        routes_catalog,
        routes_variants,
        routes_inventory,
        routes_orders,
        routes_customers,
        routes_hooks,
        routes_scripts,
        routes_store,
        routes_control,
        routes_apps,
    ):
        app.include_router(module.router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(Gateway, sim=sim)
    return app
