"""Inventory v3: absolute and relative adjustments, ``GET /inventory/items`` and
``GET /inventory/locations``.

Location 1 ("Default location") always exists; others are made through the control API
(``locations.py``). Items list every location with its own level. Adjustments are applied at
once (the real API is
asynchronous; here the change is visible to the next request) and all-or-nothing: a relative
adjustment that would take any item below zero fails with 422 and changes nothing. Adjustments fire
the inventory webhooks with ``method: "absolute"`` (an API change, as webhooks.md describes).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .catalog import (
    MAX_STOCK,
    Holder,
    holder_for_variant,
    holder_level,
    resolve_item,
    set_level_at,
)
from .deps import V3, StoreDep, ok, read_object
from .formats import ApiError, iso, page_args, paginate_v3, q_int_list, q_list
from .locations import level_at, locations_of, warning_at
from .records import Variant
from .state import Store

router = APIRouter()

MAX_ITEMS = 2000
PROBLEM = "application/problem+json"


def _items(store: Store, body: dict[str, Any]) -> list[dict[str, Any]]:
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
        if item.get("location_id") not in locations_of(store):
            errors = {f"{where}.location_id": f"location {item.get('location_id')} not found"}
            raise ApiError(422, "Input is invalid", errors, media_type=PROBLEM)
        if not isinstance(item.get("quantity"), int) or isinstance(item.get("quantity"), bool):
            errors = {f"{where}.quantity": "must be an integer"}
            raise ApiError(422, "Input is invalid", errors, media_type=PROBLEM)
    return items


def _resolve(store: Store, items: list[dict[str, Any]]) -> list[tuple[Holder, int, int]]:
    out = []
    for item in items:
        try:
            holder = resolve_item(store, item)
        except ApiError as exc:
            exc.media_type = PROBLEM
            raise
        out.append((holder, int(item["location_id"]), int(item["quantity"])))
    return out


def _at(store: Store, holder: Holder, location: int) -> int:
    return level_at(store, holder, location, holder_level(holder))


@router.put(V3 + "/inventory/adjustments/absolute")
async def absolute(request: Request, store: StoreDep) -> JSONResponse:
    plan = _resolve(store, _items(store, await read_object(request)))
    for index, (_, _, quantity) in enumerate(plan):
        if not 0 <= quantity <= MAX_STOCK:
            errors = {f"items.{index}.quantity": f"must be between 0 and {MAX_STOCK}"}
            raise ApiError(422, "Input is invalid", errors, media_type=PROBLEM)
    for holder, location, quantity in plan:
        set_level_at(store, holder, location, quantity)
    return JSONResponse({"transaction_id": store.next_transaction_id()})


@router.post(V3 + "/inventory/adjustments/relative")
async def relative(request: Request, store: StoreDep) -> JSONResponse:
    plan = _resolve(store, _items(store, await read_object(request)))
    totals: dict[tuple[int, int | None, int], int] = {}
    for index, (holder, location, quantity) in enumerate(plan):
        key = (holder[0].id, holder[1].id if holder[1] is not None else None, location)
        totals[key] = totals.get(key, _at(store, holder, location)) + quantity
        if not 0 <= totals[key] <= MAX_STOCK:
            errors = {f"items.{index}.quantity": "the adjustment would take stock below zero"}
            raise ApiError(422, "Insufficient stock", errors, media_type=PROBLEM)
    for holder, location, quantity in plan:
        set_level_at(store, holder, location, _at(store, holder, location) + quantity)
    return JSONResponse({"transaction_id": store.next_transaction_id()})


def _item(store: Store, variant: Variant, wanted: list[int] | None) -> dict[str, Any]:
    holder = holder_for_variant(store, variant)
    product, _ = holder
    total = holder_level(holder)
    tracked = product.inventory_tracking != "none"
    found = []
    for loc in locations_of(store).values():
        if wanted is not None and loc["id"] not in wanted:
            continue
        level = level_at(store, holder, loc["id"], total)
        found.append(
            {
                "location_id": loc["id"],
                "location_code": loc["code"],
                "location_name": loc["label"],
                "location_enabled": loc["enabled"],
                "available_to_sell": level,
                "total_inventory_onhand": level,
                "settings": {
                    "safety_stock": 0,
                    "is_in_stock": (level > 0) if tracked else True,
                    "warning_level": warning_at(store, holder, loc["id"]),
                    "bin_picking_number": variant.bin_picking_number,
                },
            }
        )
    identity = {
        "sku": variant.sku,
        "variant_id": variant.id,
        "product_id": product.id,
        "sku_id": variant.sku_id,
    }
    return {"identity": identity, "locations": found}


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
    wanted = q_int_list(params, "location_id:in")
    if wanted is not None and not set(wanted) & set(locations_of(store)):
        found = []
    chunk, meta = paginate_v3(found, page, limit)
    return ok([_item(store, v, wanted) for v in chunk], meta)


@router.get(V3 + "/inventory/locations")
async def locations(request: Request, store: StoreDep) -> JSONResponse:
    params = request.query_params
    page, limit = page_args(params)
    wanted = q_int_list(params, "location_id:in")
    found = [
        _location(loc)
        for loc in sorted(locations_of(store).values(), key=lambda loc: loc["id"])
        if wanted is None or loc["id"] in wanted
    ]
    chunk, meta = paginate_v3(found, page, limit)
    return ok(chunk, meta)


def _location(loc: dict[str, Any]) -> dict[str, Any]:
    stamp = iso(loc["created_at"])
    return {
        "id": loc["id"],
        "code": loc["code"],
        "label": loc["label"],
        "managed_by_external_source": False,
        "type_id": loc["type_id"],
        "enabled": loc["enabled"],
        "time_zone": "Etc/UTC",
        "created_at": stamp,
        "updated_at": stamp,
        "address": {"address1": "455 Main Street", "address2": "", "city": "Austin",
                    "state": "Texas", "zip": "78751", "email": "owner@example.com",
                    "phone": "", "country_code": "US"},
        "storefront_visibility": loc["storefront_visibility"],
    }  # fmt: skip
