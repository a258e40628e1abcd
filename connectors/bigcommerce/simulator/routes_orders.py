"""Orders v2: orders (list with filters, count, get, create, update, archive), order products,
shipping addresses (list, get), shipments (list, count, get, create), messages (list) and order
statuses.

v2 answers are bare JSON (no envelope), dates are RFC-2822, money is a string with four decimals,
an empty collection or a page past the end is ``204 No Content``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import QueryParams

from .deps import V2, StoreDep, bare, no_content, read_object
from .formats import ApiError, parse_when, q_int, rfc2822
from .orders import create_order, create_shipment, set_status
from .orders_json import (
    ADDRESS_FIELDS,
    STATUS_ORDER,
    STATUSES,
    line_body,
    order_body,
    shipment_body,
    shipping_address_body,
    status_body,
    totals,
)
from .records import Order, Product, Variant
from .state import Store

router = APIRouter()
MAX_LIMIT = 250


def base_url(request: Request, store: Store) -> str:
    return f"{str(request.base_url).rstrip('/')}/stores/{store.store_hash}"


def _order(store: Store, order_id: int) -> Order:
    order = store.orders.get(order_id)
    if order is None:
        raise ApiError(404, "The requested resource was not found.")
    return order


def _page(params: QueryParams) -> tuple[int, int]:
    page = q_int(params, "page") or 1
    limit = min(q_int(params, "limit") or 50, MAX_LIMIT)
    if page < 1 or limit < 1:
        raise ApiError(400, "page and limit must be positive")
    return page, limit


def _matches(order: Order, params: QueryParams) -> bool:
    if order.is_deleted:
        return False
    total = totals(order)["total"]
    checks: list[tuple[str, Any, Any]] = [
        ("min_id", order.id, lambda v, x: v >= int(x)),
        ("max_id", order.id, lambda v, x: v <= int(x)),
        ("min_total", total, lambda v, x: v >= Decimal(x)),
        ("max_total", total, lambda v, x: v <= Decimal(x)),
        ("customer_id", order.customer_id, lambda v, x: v == int(x)),
        ("status_id", order.status_id, lambda v, x: v == int(x)),
        ("channel_id", order.channel_id, lambda v, x: v == int(x)),
        ("cart_id", order.cart_id, lambda v, x: v == x),
        ("payment_method", order.payment_method, lambda v, x: v == x),
        ("email", order.billing_address.get("email", ""), lambda v, x: v.lower() == x.lower()),
        ("min_date_created", order.date_created, lambda v, x: v >= parse_when(x)),
        ("max_date_created", order.date_created, lambda v, x: v <= parse_when(x)),
        ("min_date_modified", order.date_modified, lambda v, x: v >= parse_when(x)),
        ("max_date_modified", order.date_modified, lambda v, x: v <= parse_when(x)),
    ]
    for name, value, keep in checks:
        raw = params.get(name)
        if raw is None or raw == "":
            continue
        try:
            if not keep(value, raw):
                return False
        except (ValueError, ArithmeticError) as exc:
            raise ApiError(400, f"The filter {name} is invalid.") from exc
    return True


def _filtered(store: Store, params: QueryParams) -> list[Order]:
    found = [o for o in store.orders.values() if _matches(o, params)]
    sort = params.get("sort") or "id"
    field, _, direction = sort.partition(":")
    if field not in (
        "id",
        "customer_id",
        "date_created",
        "date_modified",
        "status_id",
        "channel_id",
    ):
        raise ApiError(400, f"The sort field {field} is not supported.")
    found.sort(key=lambda o: (getattr(o, field), o.id), reverse=direction.lower() == "desc")
    return found


@router.get(V2 + "/orders")
async def list_orders(request: Request, store: StoreDep) -> Response:
    page, limit = _page(request.query_params)
    found = _filtered(store, request.query_params)[(page - 1) * limit : page * limit]
    url = base_url(request, store)
    return bare([order_body(store, o, url) for o in found])


@router.get(V2 + "/orders/count")
async def count_orders(request: Request, store: StoreDep) -> JSONResponse:
    found = _filtered(store, request.query_params)
    statuses = []
    for position, status_id in enumerate(STATUS_ORDER):
        entry = status_body(status_id)
        del entry["order"]
        entry["count"] = sum(1 for o in found if o.status_id == status_id)
        entry["sort_order"] = position
        statuses.append(entry)
    return JSONResponse({"statuses": statuses, "count": len(found)})


def _lines(store: Store, body: dict[str, Any]) -> tuple[list[Any], list[dict[str, Any]]]:
    products = body.get("products")
    if not isinstance(products, list) or not products:
        raise ApiError(400, "The field 'products' is invalid: at least one product is required.")
    wanted: list[tuple[Product, Variant | None, int]] = []
    custom: list[dict[str, Any]] = []
    for item in products:
        quantity = item.get("quantity") if isinstance(item, dict) else None
        if not isinstance(quantity, int) or quantity < 1:
            raise ApiError(400, "The field 'quantity' is invalid.")
        if item.get("product_id") is None:
            if not item.get("name") or item.get("price_ex_tax") is None:
                raise ApiError(400, "A custom product needs name, price_inc_tax and price_ex_tax.")
            custom.append(item)
            continue
        product = store.products.get(item["product_id"])
        if product is None:
            raise ApiError(400, f"The product with id {item['product_id']} does not exist.")
        variant = store.variants.get(item["variant_id"]) if item.get("variant_id") else None
        if item.get("variant_id") and (variant is None or variant.product_id != product.id):
            raise ApiError(400, f"The variant with id {item['variant_id']} does not exist.")
        if variant is None and store.option_variants(product.id):
            raise ApiError(400, f"The product with id {product.id} needs a variant_id.")
        wanted.append((product, variant, quantity))
    return wanted, custom


def _address(raw: Any) -> dict[str, str]:
    """The billing address: the spec's string fields (``zip`` required), others dropped."""
    if not isinstance(raw, dict) or not raw.get("zip"):
        raise ApiError(400, "The field 'billing_address' is invalid: zip is required.")
    for key in ADDRESS_FIELDS:
        if key in raw and not isinstance(raw[key], str):
            raise ApiError(400, f"The field 'billing_address.{key}' must be a string.")
    return {key: raw.get(key, "") for key in ADDRESS_FIELDS}


@router.post(V2 + "/orders")
async def create(request: Request, store: StoreDep) -> Response:
    body = await read_object(request)
    address = _address(body.get("billing_address"))
    wanted, custom = _lines(store, body)
    extra: dict[str, Any] = {
        k: str(body[k])
        for k in ("staff_notes", "customer_message", "payment_method")
        if isinstance(body.get(k), str)
    }
    extra["order_source"] = "external"
    if isinstance(body.get("external_source"), str):
        extra["external_source"] = body["external_source"]
    channel: Any = body.get("channel_id", 1)
    if not isinstance(channel, int) or isinstance(channel, bool) or channel < 1:
        raise ApiError(400, "The field 'channel_id' is invalid.")
    extra["channel_id"] = channel
    order = create_order(
        store,
        wanted,
        customer_id=int(body.get("customer_id") or 0),
        status_id=int(body.get("status_id", 1)),
        billing_address=address,
        custom_lines=custom,
        extra=extra,
    )
    return JSONResponse(order_body(store, order, base_url(request, store)))


@router.get(V2 + "/orders/{order_id}")
async def get_order(request: Request, store: StoreDep, order_id: int) -> JSONResponse:
    return JSONResponse(order_body(store, _order(store, order_id), base_url(request, store)))


@router.put(V2 + "/orders/{order_id}")
async def update(request: Request, store: StoreDep, order_id: int) -> JSONResponse:
    order = _order(store, order_id)
    body = await read_object(request)
    if "status_id" in body and (
        not isinstance(body["status_id"], int) or body["status_id"] not in STATUSES
    ):
        raise ApiError(400, "The field 'status_id' is invalid.")
    changed = False
    for key in ("staff_notes", "customer_message"):
        if key in body:
            if not isinstance(body[key], str):
                raise ApiError(400, f"The field '{key}' is invalid.")
            changed |= getattr(order, key) != body[key]
            setattr(order, key, body[key])
    if "status_id" in body:
        changed |= set_status(store, order, body["status_id"])
    if changed:
        order.date_modified = store.now()
        store.emit("store/order/updated", {"type": "order", "id": order.id})
    return JSONResponse(order_body(store, order, base_url(request, store)))


@router.delete(V2 + "/orders/{order_id}")
async def archive(store: StoreDep, order_id: int) -> Response:
    order = _order(store, order_id)
    if not order.is_deleted:
        order.is_deleted = True
        order.date_modified = store.now()
        store.emit("store/order/archived", {"type": "order", "id": order.id})
    return no_content()


@router.get(V2 + "/orders/{order_id}/products")
async def order_products(request: Request, store: StoreDep, order_id: int) -> Response:
    page, limit = _page(request.query_params)
    lines = _order(store, order_id).lines[(page - 1) * limit : page * limit]
    return JSONResponse([line_body(store, line) for line in lines])


@router.get(V2 + "/orders/{order_id}/products/{line_id}")
async def order_product(store: StoreDep, order_id: int, line_id: int) -> JSONResponse:
    for line in _order(store, order_id).lines:
        if line.id == line_id:
            return JSONResponse(line_body(store, line))
    raise ApiError(404, "The requested resource was not found.")


@router.get(V2 + "/orders/{order_id}/shipping_addresses")
async def shipping_addresses(request: Request, store: StoreDep, order_id: int) -> Response:
    order = _order(store, order_id)
    page, limit = _page(request.query_params)
    found = [shipping_address_body(order, base_url(request, store))]
    return bare(found[(page - 1) * limit : page * limit])


@router.get(V2 + "/orders/{order_id}/shipping_addresses/{address_id}")
async def shipping_address(
    request: Request, store: StoreDep, order_id: int, address_id: int
) -> JSONResponse:
    order = _order(store, order_id)
    if address_id != order.order_address_id:
        raise ApiError(404, "The requested resource was not found.")
    return JSONResponse(shipping_address_body(order, base_url(request, store)))


@router.get(V2 + "/orders/{order_id}/shipments")
async def shipments(request: Request, store: StoreDep, order_id: int) -> Response:
    _order(store, order_id)
    page, limit = _page(request.query_params)
    found = sorted(
        (s for s in store.shipments.values() if s.order_id == order_id), key=lambda s: s.id
    )[(page - 1) * limit : page * limit]
    return bare([shipment_body(store, s) for s in found])


@router.get(V2 + "/orders/{order_id}/shipments/count")
async def count_shipments(store: StoreDep, order_id: int) -> JSONResponse:
    _order(store, order_id)
    return JSONResponse(
        {"count": sum(1 for s in store.shipments.values() if s.order_id == order_id)}
    )


@router.post(V2 + "/orders/{order_id}/shipments")
async def ship(request: Request, store: StoreDep, order_id: int) -> JSONResponse:
    order = _order(store, order_id)
    shipment = create_shipment(store, order, await read_object(request))
    return JSONResponse(shipment_body(store, shipment), 201)


@router.get(V2 + "/orders/{order_id}/shipments/{shipment_id}")
async def get_shipment(store: StoreDep, order_id: int, shipment_id: int) -> JSONResponse:
    shipment = store.shipments.get(shipment_id)
    if shipment is None or shipment.order_id != _order(store, order_id).id:
        raise ApiError(404, "The requested resource was not found.")
    return JSONResponse(shipment_body(store, shipment))


@router.get(V2 + "/orders/{order_id}/messages")
async def messages(request: Request, store: StoreDep, order_id: int) -> Response:
    _order(store, order_id)
    page, limit = _page(request.query_params)
    found = sorted(
        (m for m in store.messages.values() if m.order_id == order_id), key=lambda m: m.id
    )[(page - 1) * limit : page * limit]
    body = [
        {**m.model_dump(), "date_created": rfc2822(m.date_created), "customer": {}} for m in found
    ]
    return JSONResponse(body)


@router.get(V2 + "/order_statuses")
async def order_statuses() -> JSONResponse:
    return JSONResponse([status_body(s) for s in sorted(STATUSES)])


@router.get(V2 + "/order_statuses/{status_id}")
async def order_status(status_id: int) -> JSONResponse:
    if status_id not in STATUSES:
        raise ApiError(404, "The requested resource was not found.")
    return JSONResponse(status_body(status_id))
