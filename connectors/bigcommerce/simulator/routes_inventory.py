"""Inventory v3: absolute and relative adjustments, ``GET /inventory/items`` and
``GET /inventory/locations``.

One location exists (id 1, "Default location"). Adjustments are applied at once (the real API is
asynchronous; here the change is visible to the next request) and all-or-nothing: a relative
adjustment that would take any item below zero fails with 422 and changes nothing. Adjustments fire
the inventory webhooks with ``method: "absolute"`` (an API change, as webhooks.md describes).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .catalog import MAX_STOCK, Holder, holder_for_variant, holder_level, resolve_item, set_level
from .deps import V3, StoreDep, ok, read_object
from .formats import ApiError, iso, page_args, paginate_v3, q_int_list, q_list
from .records import Variant
from .state import Store

router = APIRouter()

LOCATION_ID = 1
LOCATION = {
    "location_id": LOCATION_ID,
    "location_code": "BC-LOCATION-1",
    "location_name": "Default location",
    "location_enabled": True,
}
MAX_ITEMS = 2000
PROBLEM = "application/problem+json"


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise ApiError(422, "Input is invalid", {"items": "is required"}, media_type=PROBLEM)
    if len(items) > MAX_ITEMS:
        raise ApiError(413, f"At most {MAX_ITEMS} items per request", {})
    for index, item in enumerate(items):
        where = f"items.{index}"
        if not isinstance(item, dict):
            raise ApiError(
                422, "Input is invalid", {where: "must be an object"}, media_type=PROBLEM
            )
        keys = [k for k in ("sku", "variant_id", "product_id") if item.get(k) is not None]
        if len(keys) != 1:
            errors = {where: "needs exactly one of sku, variant_id, product_id"}
            raise ApiError(422, "Input is invalid", errors, media_type=PROBLEM)
        if item.get("location_id") != LOCATION_ID:
            errors = {f"{where}.location_id": f"location {item.get('location_id')} not found"}
            raise ApiError(422, "Input is invalid", errors, media_type=PROBLEM)
        if not isinstance(item.get("quantity"), int) or isinstance(item.get("quantity"), bool):
            errors = {f"{where}.quantity": "must be an integer"}
            raise ApiError(422, "Input is invalid", errors, media_type=PROBLEM)
    return items


def _resolve(store: Store, items: list[dict[str, Any]]) -> list[tuple[Holder, int]]:
    out = []
    for item in items:
        try:
            holder = resolve_item(store, item)
        except ApiError as exc:
            exc.media_type = PROBLEM
            raise
        out.append((holder, int(item["quantity"])))
    return out


@router.put(V3 + "/inventory/adjustments/absolute")
async def absolute(request: Request, store: StoreDep) -> JSONResponse:
    plan = _resolve(store, _items(await read_object(request)))
    for index, (_, quantity) in enumerate(plan):
        if not 0 <= quantity <= MAX_STOCK:
            errors = {f"items.{index}.quantity": f"must be between 0 and {MAX_STOCK}"}
            raise ApiError(422, "Input is invalid", errors, media_type=PROBLEM)
    for holder, quantity in plan:
        set_level(store, holder, quantity)
    return JSONResponse({"transaction_id": store.next_transaction_id()})


@router.post(V3 + "/inventory/adjustments/relative")
async def relative(request: Request, store: StoreDep) -> JSONResponse:
    plan = _resolve(store, _items(await read_object(request)))
    totals: dict[tuple[int, int | None], int] = {}
    for index, (holder, quantity) in enumerate(plan):
        key = (holder[0].id, holder[1].id if holder[1] is not None else None)
        totals[key] = totals.get(key, holder_level(holder)) + quantity
        if not 0 <= totals[key] <= MAX_STOCK:
            errors = {f"items.{index}.quantity": "the adjustment would take stock below zero"}
            raise ApiError(422, "Insufficient stock", errors, media_type=PROBLEM)
    for holder, quantity in plan:
        set_level(store, holder, holder_level(holder) + quantity)
    return JSONResponse({"transaction_id": store.next_transaction_id()})


def _item(store: Store, variant: Variant) -> dict[str, Any]:
    product, _ = holder_for_variant(store, variant)
    level = holder_level(holder_for_variant(store, variant))
    warning = (
        variant.inventory_warning_level
        if variant.option_values
        else (product.inventory_warning_level)
    )
    tracked = product.inventory_tracking != "none"
    location = {
        **LOCATION,
        "available_to_sell": level,
        "total_inventory_onhand": level,
        "settings": {
            "safety_stock": 0,
            "is_in_stock": (level > 0) if tracked else True,
            "warning_level": warning,
            "bin_picking_number": variant.bin_picking_number,
        },
    }
    identity = {
        "sku": variant.sku,
        "variant_id": variant.id,
        "product_id": product.id,
        "sku_id": variant.sku_id,
    }
    return {"identity": identity, "locations": [location]}


@router.get(V3 + "/inventory/items")
async def items(request: Request, store: StoreDep) -> JSONResponse:
    params = request.query_params
    page, limit = page_args(params, max_limit=1000)
    found = sorted(store.variants.values(), key=lambda v: v.id)
    if (skus := q_list(params, "sku:in")) is not None:
        found = [v for v in found if v.sku in skus]
    if (variant_ids := q_int_list(params, "variant_id:in")) is not None:
        found = [v for v in found if v.id in variant_ids]
    if (product_ids := q_int_list(params, "product_id:in")) is not None:
        found = [v for v in found if v.product_id in product_ids]
    if (locations := q_int_list(params, "location_id:in")) is not None and (
        LOCATION_ID not in locations
    ):
        found = []
    chunk, meta = paginate_v3(found, page, limit)
    return ok([_item(store, v) for v in chunk], meta)


@router.get(V3 + "/inventory/locations")
async def locations(request: Request, store: StoreDep) -> JSONResponse:
    params = request.query_params
    page, limit = page_args(params)
    stamp = iso(store.now().replace(hour=0, minute=0, second=0))
    location = {
        "id": LOCATION_ID,
        "code": LOCATION["location_code"],
        "label": LOCATION["location_name"],
        "managed_by_external_source": False,
        "type_id": "PHYSICAL",
        "enabled": True,
        "time_zone": "Etc/UTC",
        "created_at": stamp,
        "updated_at": stamp,
        "address": {"address1": "455 Main Street", "address2": "", "city": "Austin",
                    "state": "Texas", "zip": "78751", "email": "owner@example.com",
                    "phone": "", "country_code": "US"},
        "storefront_visibility": True,
    }  # fmt: skip
    wanted = q_int_list(params, "location_id:in")
    found = [location] if wanted is None or LOCATION_ID in wanted else []
    chunk, meta = paginate_v3(found, page, limit)
    return ok(chunk, meta)
