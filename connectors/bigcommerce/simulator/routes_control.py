"""Control endpoints under ``/_sim``: the simulator's own API, not BigCommerce's.

No token and no rate limit; errors use the v3 error shape. README.md in this folder documents
each endpoint with examples.

* ``GET /_sim``: index. ``GET|POST /_sim/stores``: list stores, add one (``{"name", "seed"}``).
* ``GET /_sim/stores/{hash}``: credentials, base URL and counters of one store.
* ``POST /_sim/stores/{hash}/orders``: a shopper checks out
  (``{"customer_id", "lines": [{"product_id", "variant_id", "quantity"}]}``); 201 ``{"order"}``,
  or 409/422 with a ``reason`` (rules in ``shoppers.py``).
* ``POST /_sim/stores/{hash}/burst``: ``{"orders", "products" | "product_ids",
  "inventory_updates", "quantity", "restock_level"}``; returns a summary.
* ``PUT /_sim/stores/{hash}/stock``: ``{"product_id", "variant_id", "level", "location_id"}``;
  sets stock (at location 1 unless given) and fires the inventory webhooks.
* ``POST /_sim/stores/{hash}/locations`` (``{"code", "label", "enabled"}``), ``PATCH
  …/locations/{id}``, ``PUT …/locations/{id}/settings`` (``{"product_id", "variant_id",
  "warning_level"}``): locations and their webhooks (``locations.py``).
* ``POST /_sim/stores/{hash}/orders/{id}/refund`` (``{"amount"}``, whole order when absent) and
  ``POST …/orders/{id}/messages`` (``{"message", "subject", "customer_id"}``).
* ``GET|DELETE /_sim/stores/{hash}/requests``: request log (filters ``method``, ``path``,
  ``path_prefix``); DELETE clears the log and the counters.
* ``GET /_sim/stores/{hash}/counters`` and ``GET /_sim/stores/{hash}/events``.
* ``POST /_sim/stores/{hash}/rate-limit/reset``: start a fresh quota window.
* ``GET|PUT /_sim/faults``: ``latency_ms``, ``error_rate``, ``error_status``,
  ``error_after_commit``.
* ``GET /_sim/deliveries`` (``?store_hash=``) and ``POST /_sim/deliveries/drain``
  (``?timeout_s=``, default 30).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from .config import FaultSettings
from .deps import SimDep, no_content, read_object
from .formats import ApiError, invalid, q_float, rfc2822
from .locations import (
    DEFAULT_LOCATION,
    create_location,
    location,
    set_warning_at,
    update_location,
)
from .orders import refund
from .orders_json import order_body
from .records import Order, OrderMessage, build, validation_errors
from .shoppers import Line, PurchaseRefused, burst, checkout, set_stock, stock_holder
from .simulator import Simulator
from .state import Store

router = APIRouter(prefix="/_sim")


def _store(sim: Simulator, store_hash: str) -> Store:
    store = sim.state.stores.get(store_hash)
    if store is None:
        raise ApiError(404, f"Store {store_hash} not found.")
    return store


def _order(store: Store, order_id: int) -> Order:
    order = store.orders.get(order_id)
    if order is None:
        raise ApiError(404, f"Order {order_id} not found.")
    return order


def _int(body: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = body.get(key, default)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise invalid({key: "must be an integer"})
    return value


def _store_info(store: Store, request: Request) -> dict[str, Any]:
    root = str(request.base_url).rstrip("/")
    return {
        **store.public(),
        "client_secret": store.client_secret,
        "base_url": f"{root}/stores/{store.store_hash}",
        "counters": store.counters.public(),
    }


@router.get("")
async def index(sim: SimDep) -> JSONResponse:
    return JSONResponse({"stores": sorted(sim.state.stores), "doc": __doc__})


@router.get("/stores")
async def stores(request: Request, sim: SimDep) -> JSONResponse:
    return JSONResponse([_store_info(s, request) for s in sim.state.stores.values()])


@router.post("/stores")
async def add_store(request: Request, sim: SimDep) -> JSONResponse:
    raw = await request.body()
    body = await read_object(request) if raw.strip() else {}
    store = sim.add_store(seed=bool(body.get("seed", False)), name=str(body.get("name", "Store")))
    return JSONResponse(_store_info(store, request), 201)


@router.get("/stores/{store_hash}")
async def store_info(request: Request, sim: SimDep, store_hash: str) -> JSONResponse:
    return JSONResponse(_store_info(_store(sim, store_hash), request))


@router.post("/stores/{store_hash}/orders")
async def place_order(request: Request, sim: SimDep, store_hash: str) -> JSONResponse:
    store = _store(sim, store_hash)
    body = await read_object(request)
    raw_lines = body.get("lines")
    if not isinstance(raw_lines, list):
        raise invalid({"lines": "is required"})
    lines = []
    for index, raw in enumerate(raw_lines):
        if not isinstance(raw, dict) or not isinstance(raw.get("product_id"), int):
            raise invalid({f"lines[{index}].product_id": "is required"})
        lines.append(
            Line(raw["product_id"], _int(raw, "quantity", 1) or 0, _int(raw, "variant_id"))
        )
    try:
        order = checkout(store, lines, customer_id=_int(body, "customer_id", 0) or 0)
    except PurchaseRefused as refused:
        return JSONResponse(refused.body(), refused.status)
    root = f"{str(request.base_url).rstrip('/')}/stores/{store.store_hash}"
    return JSONResponse({"order": order_body(store, order, root)}, 201)


@router.post("/stores/{store_hash}/burst")
async def run_burst(sim: SimDep, store_hash: str, request: Request) -> JSONResponse:
    store = _store(sim, store_hash)
    body = await read_object(request)
    ids = body.get("product_ids")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, int) for i in ids)):
        raise invalid({"product_ids": "must be a list of product ids"})
    result = burst(
        store,
        orders=_int(body, "orders", 0) or 0,
        product_ids=ids,
        products=_int(body, "products"),
        inventory_updates=_int(body, "inventory_updates", 0) or 0,
        quantity=_int(body, "quantity", 1) or 1,
        restock_level=_int(body, "restock_level", 25) or 0,
    )
    return JSONResponse(result.public())


@router.put("/stores/{store_hash}/stock")
async def put_stock(sim: SimDep, store_hash: str, request: Request) -> JSONResponse:
    store = _store(sim, store_hash)
    body = await read_object(request)
    product_id, level = _int(body, "product_id"), _int(body, "level")
    if product_id is None or level is None or level < 0:
        raise invalid({"product_id": "is required", "level": "is required (>= 0)"})
    variant_id = _int(body, "variant_id")
    location_id = _int(body, "location_id", DEFAULT_LOCATION) or DEFAULT_LOCATION
    location(store, location_id)
    delta = set_stock(store, product_id, level, variant_id, location_id)
    return JSONResponse(
        {"product_id": product_id, "variant_id": variant_id, "level": level, "delta": delta}
    )


@router.post("/stores/{store_hash}/locations")
async def add_location(sim: SimDep, store_hash: str, request: Request) -> JSONResponse:
    """A merchant adds a location (``store/inventory/location/created``)."""
    record = create_location(_store(sim, store_hash), await read_object(request))
    return JSONResponse({k: v for k, v in record.items() if k != "created_at"}, 201)


@router.patch("/stores/{store_hash}/locations/{location_id}")
async def change_location(
    sim: SimDep, store_hash: str, location_id: int, request: Request
) -> JSONResponse:
    """A merchant edits, enables or disables a location (``…/location/updated``)."""
    record = update_location(_store(sim, store_hash), location_id, await read_object(request))
    return JSONResponse({k: v for k, v in record.items() if k != "created_at"})


@router.put("/stores/{store_hash}/locations/{location_id}/settings")
async def location_settings(
    sim: SimDep, store_hash: str, location_id: int, request: Request
) -> Response:
    """A location's warning level for a product or variant
    (``store/channel/*/inventory/product/settings_changed``)."""
    store = _store(sim, store_hash)
    body = await read_object(request)
    product_id, warning = _int(body, "product_id"), _int(body, "warning_level")
    if product_id is None or warning is None or warning < 0:
        raise invalid({"product_id": "is required", "warning_level": "is required (>= 0)"})
    location(store, location_id)
    holder = stock_holder(store, product_id, _int(body, "variant_id"))
    set_warning_at(store, holder, location_id, warning)
    return no_content()


@router.post("/stores/{store_hash}/orders/{order_id}/refund")
async def refund_order(sim: SimDep, store_hash: str, order_id: int, request: Request) -> Response:
    store = _store(sim, store_hash)
    order = _order(store, order_id)
    raw = await request.body()
    body = await read_object(request) if raw.strip() else {}
    amount = None
    if body.get("amount") is not None:
        try:
            amount = Decimal(str(body["amount"]))
        except InvalidOperation as exc:
            raise invalid({"amount": "must be a number"}) from exc
    return JSONResponse({"refund_id": refund(store, order, amount), "order_id": order.id})


@router.post("/stores/{store_hash}/orders/{order_id}/messages")
async def add_message(sim: SimDep, store_hash: str, order_id: int, request: Request) -> Response:
    store = _store(sim, store_hash)
    order = _order(store, order_id)
    body = await read_object(request)
    fields: dict[str, Any] = {
        k: body[k] for k in ("message", "subject", "customer_id", "type") if k in body
    }
    message = build(
        OrderMessage,
        {
            "customer_id": order.customer_id,
            **fields,
            "id": store.next_id("message"),
            "order_id": order.id,
            "date_created": store.now(),
        },
    )
    store.messages[message.id] = message
    store.emit(
        "store/order/message/created",
        {"type": "order", "id": order.id, "message": {"order_message_id": message.id}},
    )
    data = {**message.model_dump(), "date_created": rfc2822(message.date_created)}
    return JSONResponse(data, 201)


@router.get("/stores/{store_hash}/requests")
async def request_log(sim: SimDep, store_hash: str, request: Request) -> JSONResponse:
    params = request.query_params
    found = list(_store(sim, store_hash).requests)
    if (method := params.get("method")) is not None:
        found = [r for r in found if r.method == method.upper()]
    if (path := params.get("path")) is not None:
        found = [r for r in found if r.path == path]
    if (prefix := params.get("path_prefix")) is not None:
        found = [r for r in found if r.path.startswith(prefix)]
    return JSONResponse({"data": [r.public() for r in found]})


@router.delete("/stores/{store_hash}/requests")
async def clear_log(sim: SimDep, store_hash: str) -> Response:
    _store(sim, store_hash).reset_log()
    return no_content()


@router.get("/stores/{store_hash}/counters")
async def counters(sim: SimDep, store_hash: str) -> JSONResponse:
    return JSONResponse(_store(sim, store_hash).counters.public())


@router.get("/stores/{store_hash}/events")
async def events(sim: SimDep, store_hash: str) -> JSONResponse:
    found = _store(sim, store_hash).events
    return JSONResponse(
        {
            "data": [
                {"seq": e.seq, "scope": e.scope, "data": e.data, "created_at": e.created_at}
                for e in found
            ]
        }
    )


@router.post("/stores/{store_hash}/rate-limit/reset")
async def reset_rate(sim: SimDep, store_hash: str) -> Response:
    sim.limiter.reset(_store(sim, store_hash).store_hash)
    return no_content()


@router.get("/faults")
async def get_faults(sim: SimDep) -> JSONResponse:
    return JSONResponse(sim.faults.model_dump())


@router.put("/faults")
async def put_faults(sim: SimDep, request: Request) -> JSONResponse:
    body = await read_object(request)
    try:
        sim.faults = FaultSettings.model_validate({**sim.faults.model_dump(), **body})
    except ValidationError as exc:
        raise invalid(validation_errors(exc)) from exc
    return JSONResponse(sim.faults.model_dump())


@router.get("/deliveries")
async def deliveries(sim: SimDep, request: Request) -> JSONResponse:
    wanted = request.query_params.get("store_hash")
    log = [r.public() for r in sim.deliveries.log if wanted is None or r.store_hash == wanted]
    return JSONResponse({"pending": sim.deliveries.pending, "data": log})


@router.post("/deliveries/drain")
async def drain(sim: SimDep, request: Request) -> JSONResponse:
    timeout = q_float(request.query_params, "timeout_s") or 30.0
    try:
        await asyncio.wait_for(sim.deliveries.drain(), timeout)
    except TimeoutError:
        return JSONResponse({"drained": False, "pending": sim.deliveries.pending}, 504)
    return JSONResponse({"drained": True, "pending": 0})
