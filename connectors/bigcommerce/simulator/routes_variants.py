"""Catalog v3 variants: per product (list, create, get, update, delete) and across the catalog
(``GET /catalog/variants`` and the batch ``PUT /catalog/variants``, at most 50 per call)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .catalog import holder_for_variant, serialize_variant, set_level
from .deps import V3, StoreDep, no_content, ok, read_array, read_object
from .formats import ApiError, invalid, not_found, page_args, paginate_v3, q_int, q_int_list
from .products import create_variant
from .records import VARIANT_READ_ONLY, Product, Variant, merged
from .state import Store

router = APIRouter()


def _product(store: Store, product_id: int) -> Product:
    product = store.products.get(product_id)
    if product is None:
        raise not_found(f"Product with id {product_id} not found.")
    return product


def _variant(store: Store, product_id: int, variant_id: int) -> Variant:
    _product(store, product_id)
    variant = store.variants.get(variant_id)
    if variant is None or variant.product_id != product_id:
        raise not_found(f"Variant with id {variant_id} not found.")
    return variant


def update_variant(store: Store, variant: Variant, body: dict[str, Any]) -> Variant:
    changes = {k: v for k, v in body.items() if k not in VARIANT_READ_ONLY}
    level = changes.pop("inventory_level", None)
    candidate = merged(variant, changes)
    if level is not None:
        merged(variant, {"inventory_level": level})  # validates the number
    sku = candidate.sku
    if sku != variant.sku and sku and store.variant_by_sku(sku) is not None:
        raise ApiError(409, "SKU is a duplicate", {"sku": "must be unique"})
    before, after = variant.model_dump(), candidate.model_dump()
    changed = {k for k in after if after[k] != before[k]}
    for key in changed:
        setattr(variant, key, getattr(candidate, key))
    product = store.products[variant.product_id]
    if level is not None:
        set_level(store, holder_for_variant(store, variant), int(level))
    if changed:
        product.date_modified = store.now()
        if variant.option_values:
            ref = {"product_id": product.id, "variant_id": variant.id}
            store.emit("store/sku/updated", {"type": "sku", "id": variant.sku_id, "sku": ref})
        else:
            store.emit("store/product/updated", {"type": "product", "id": product.id})
    return variant


def delete_variant(store: Store, variant: Variant) -> None:
    product = store.products[variant.product_id]
    if not variant.option_values:
        raise ApiError(422, "The base variant cannot be deleted", {"id": "is the base variant"})
    del store.variants[variant.id]
    ref = {"product_id": product.id, "variant_id": variant.id}
    store.emit("store/sku/deleted", {"type": "sku", "id": variant.sku_id, "sku": ref})
    if not store.option_variants(product.id):
        base = Variant(
            id=store.next_id("variant"),
            product_id=product.id,
            sku=product.sku,
            sku_id=store.next_id("sku"),
        )
        store.variants[base.id] = base
    product.date_modified = store.now()


@router.get(V3 + "/catalog/products/{product_id}/variants")
async def list_variants(request: Request, store: StoreDep, product_id: int) -> JSONResponse:
    _product(store, product_id)
    page, limit = page_args(request.query_params)
    chunk, meta = paginate_v3(store.variants_of(product_id), page, limit)
    return ok([serialize_variant(store, v) for v in chunk], meta)


@router.post(V3 + "/catalog/products/{product_id}/variants")
async def create(request: Request, store: StoreDep, product_id: int) -> JSONResponse:
    product = _product(store, product_id)
    variant = create_variant(store, product, await read_object(request))
    return ok(serialize_variant(store, variant))


@router.get(V3 + "/catalog/products/{product_id}/variants/{variant_id}")
async def get_variant(store: StoreDep, product_id: int, variant_id: int) -> JSONResponse:
    return ok(serialize_variant(store, _variant(store, product_id, variant_id)))


@router.put(V3 + "/catalog/products/{product_id}/variants/{variant_id}")
async def update(
    request: Request, store: StoreDep, product_id: int, variant_id: int
) -> JSONResponse:
    variant = _variant(store, product_id, variant_id)
    update_variant(store, variant, await read_object(request))
    return ok(serialize_variant(store, variant))


@router.delete(V3 + "/catalog/products/{product_id}/variants/{variant_id}")
async def delete(store: StoreDep, product_id: int, variant_id: int) -> Response:
    delete_variant(store, _variant(store, product_id, variant_id))
    return no_content()


@router.get(V3 + "/catalog/variants")
async def list_all(request: Request, store: StoreDep) -> JSONResponse:
    params = request.query_params
    page, limit = page_args(params)
    found = sorted(store.variants.values(), key=lambda v: v.id)
    if (wanted_id := q_int(params, "id")) is not None:
        found = [v for v in found if v.id == wanted_id]
    if (sku := params.get("sku")) is not None:
        found = [v for v in found if v.sku == sku]
    if (upc := params.get("upc")) is not None:
        found = [v for v in found if v.upc == upc]
    if (products := q_int_list(params, "product_id:in")) is not None:
        found = [v for v in found if v.product_id in products]
    chunk, meta = paginate_v3(found, page, limit)
    return ok([serialize_variant(store, v) for v in chunk], meta)


@router.put(V3 + "/catalog/variants")
async def update_batch(request: Request, store: StoreDep) -> JSONResponse:
    items = await read_array(request, max_items=50)
    targets = []
    for index, item in enumerate(items):
        variant = store.variants.get(item["id"]) if isinstance(item.get("id"), int) else None
        if variant is None:
            raise invalid({f"[{index}].id": "must be the id of an existing variant"})
        merged(variant, {k: v for k, v in item.items() if k not in VARIANT_READ_ONLY})
        targets.append((variant, item))
    done = [update_variant(store, variant, item) for variant, item in targets]
    return ok([serialize_variant(store, v) for v in done])
