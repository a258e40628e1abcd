"""FastAPI dependencies and small response helpers shared by the route modules."""

from __future__ import annotations

import json
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response

from .formats import ApiError
from .simulator import Simulator
from .state import Store

V2 = "/stores/{store_hash}/v2"
V3 = "/stores/{store_hash}/v3"


def sim_of(request: Request) -> Simulator:
    return cast(Simulator, request.app.state.simulator)


# Dependencies are coroutines: FastAPI would run plain functions in a worker thread.
async def _sim(request: Request) -> Simulator:
    return sim_of(request)


async def _store(request: Request, store_hash: str) -> Store:
    store = sim_of(request).state.stores.get(store_hash)
    if store is None:  # the gateway answers first; this guards direct mounting
        raise ApiError(404, "Store not found.")
    return store


StoreDep = Annotated[Store, Depends(_store)]
SimDep = Annotated[Simulator, Depends(_sim)]


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "The request body is empty.")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "The request body is not valid JSON.") from exc


async def read_object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(422, "JSON data is missing or invalid", {"body": "must be an object"})
    return body


async def read_array(request: Request, *, max_items: int | None = None) -> list[dict[str, Any]]:
    body = await read_json(request)
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise ApiError(422, "JSON data is missing or invalid", {"body": "must be an array"})
    if max_items is not None and len(body) > max_items:
        raise ApiError(
            413,
            "The request payload is too large. "
            f"The maximum items allowed in the array is {max_items}.",
            {},
        )
    return body


def ok(data: Any, meta: dict[str, Any] | None = None, status: int = 200) -> JSONResponse:
    """A v3 envelope."""
    return JSONResponse({"data": data, "meta": meta if meta is not None else {}}, status)


def bare(data: Any, status: int = 200) -> Response:
    """A v2 answer: the JSON itself, or 204 for an empty list."""
    if isinstance(data, list) and not data:
        return Response(status_code=204)
    return JSONResponse(data, status)


def no_content() -> Response:
    return Response(status_code=204)
