"""Catalog v3: products (list with filters, get, create, update, batch update, delete), product
custom fields, and categories (list/get)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import QueryParams

from .catalog import product_level, serialize_product
from .deps import V3, StoreDep, no_content, ok, read_array, read_object
from .formats import (
    dates_ok,
    invalid,
    not_found,
    page_args,
    paginate_v3,
    parse_when,
    q_bool,
    q_int,
    q_int_list,
    q_list,
    range_ok,
)
from .products import (
    apply_custom_fields,
    check_conflicts,
    create_product,
    delete_product,
    update_product,
)
from .records import Category, CustomField, Product, merged
from .state import Store

router = APIRouter()

SORT_KEYS = {
    "id",
    "name",
    "sku",
    "price",
    "date_modified",
    "inventory_level",
    "total_sold",
    "is_visible",
    "calculated_price",
}
INCLUDES = {"variants", "custom_fields"}


def _includes(params: QueryParams) -> set[str]:
    return set(q_list(params, "include") or []) & INCLUDES


def _render(store: Store, product: Product, params: QueryParams) -> dict[str, Any]:
    return serialize_product(
        store,
        product,
        _includes(params),
        q_list(params, "include_fields"),
        q_list(params, "exclude_fields"),
    )


def _product(store: Store, product_id: int) -> Product:
    product = store.products.get(product_id)
    if product is None:
        raise not_found(f"Product with id {product_id} not found.")
    return product


def _matches(store: Store, p: Product, params: QueryParams) -> bool:
    level = product_level(store, p)
    if not range_ok(p.id, params, "id") or not range_ok(level, params, "inventory_level"):
        return False
    if not range_ok(p.price, params, "price") or not range_ok(p.total_sold, params, "total_sold"):
        return False
    for name in ("name", "sku", "availability", "type", "upc", "mpn"):
        wanted = params.get(name)
        if wanted is not None and str(getattr(p, name)).lower() != wanted.lower():
            return False
    if (condition := params.get("condition")) and p.condition.lower() != condition.lower():
        return False
    skus = q_list(params, "sku:in")
    if skus is not None and p.sku not in skus:
        return False
    if (brand := q_int(params, "brand_id")) is not None and p.brand_id != brand:
        return False
    for flag in ("is_visible", "is_featured", "is_free_shipping"):
        wanted_flag = q_bool(params, flag)
        if wanted_flag is not None and getattr(p, flag) != wanted_flag:
            return False
    cats = q_int_list(params, "categories:in")
    if cats is not None and not set(cats) & set(p.categories):
        return False
    if (cat := q_int(params, "categories")) is not None and cat not in p.categories:
        return False
    if (keyword := params.get("keyword")) is not None:
        haystack = f"{p.name} {p.sku} {p.description} {p.search_keywords}".lower()
        if keyword.lower() not in haystack:
            return False
    tracked = p.inventory_tracking != "none"
    low = q_bool(params, "inventory_low")
    is_low = tracked and p.inventory_warning_level > 0 and level <= p.inventory_warning_level
    if low is not None and is_low != low:
        return False
    out = q_bool(params, "out_of_stock")
    if out is not None and (tracked and level == 0) != out:
        return False
    if not dates_ok(p.date_modified, params, "date_modified"):
        return False
    day = params.get("date_modified")
    return not day or p.date_modified.date() == parse_when(day).date()


def _sorted(store: Store, items: list[Product], params: QueryParams) -> list[Product]:
    key = params.get("sort") or "id"
    if key not in SORT_KEYS:
        raise invalid({"sort": f"must be one of {sorted(SORT_KEYS)}"})

    def value(p: Product) -> Any:
        if key == "inventory_level":
            return product_level(store, p)
        if key == "calculated_price":
            return p.sale_price or p.price
        return getattr(p, key)

    return sorted(items, key=lambda p: (value(p), p.id), reverse=params.get("direction") == "desc")


@router.get(V3 + "/catalog/products")
async def list_products(request: Request, store: StoreDep) -> JSONResponse:
    params = request.query_params
    page, limit = page_args(params)
    found = [p for p in store.products.values() if _matches(store, p, params)]
    chunk, meta = paginate_v3(_sorted(store, found, params), page, limit)
    return ok([_render(store, p, params) for p in chunk], meta)


@router.post(V3 + "/catalog/products")
async def create(request: Request, store: StoreDep) -> JSONResponse:
    product = create_product(store, await read_object(request))
    return ok(_render(store, product, request.query_params))


@router.put(V3 + "/catalog/products")
async def update_batch(request: Request, store: StoreDep) -> JSONResponse:
    items = await read_array(request, max_items=10)
    if not items:
        raise invalid({"body": "at least one product is required"})
    targets = []
    for index, item in enumerate(items):
        if not isinstance(item.get("id"), int):
            raise invalid({f"[{index}].id": "is required"})
        product = _product(store, item["id"])
        candidate = merged(product, {k: v for k, v in item.items() if k != "id"})
        check_conflicts(store, candidate)  # validate every item before changing any
        targets.append((product, item))
    done = [update_product(store, product, item) for product, item in targets]
    return ok([_render(store, p, request.query_params) for p in done])


@router.delete(V3 + "/catalog/products")
async def delete_many(request: Request, store: StoreDep) -> Response:
    ids = q_int_list(request.query_params, "id:in")
    if not ids:
        raise invalid({"id:in": "a filter is required to delete products"})
    for product_id in ids:
        if product_id in store.products:
            delete_product(store, store.products[product_id])
    return no_content()


@router.get(V3 + "/catalog/products/{product_id}")
async def get_product(request: Request, store: StoreDep, product_id: int) -> JSONResponse:
    return ok(_render(store, _product(store, product_id), request.query_params))


@router.put(V3 + "/catalog/products/{product_id}")
async def update(request: Request, store: StoreDep, product_id: int) -> JSONResponse:
    product = update_product(store, _product(store, product_id), await read_object(request))
    return ok(_render(store, product, request.query_params))


@router.delete(V3 + "/catalog/products/{product_id}")
async def delete(store: StoreDep, product_id: int) -> Response:
    delete_product(store, _product(store, product_id))
    return no_content()


# -- custom fields ---------------------------------------------------------------------------


def _field(product: Product, field_id: int) -> CustomField:
    for field in product.custom_fields:
        if field.id == field_id:
            return field
    raise not_found(f"Custom field with id {field_id} not found.")


@router.get(V3 + "/catalog/products/{product_id}/custom-fields")
async def list_fields(request: Request, store: StoreDep, product_id: int) -> JSONResponse:
    page, limit = page_args(request.query_params)
    chunk, meta = paginate_v3(_product(store, product_id).custom_fields, page, limit)
    return ok([f.model_dump() for f in chunk], meta)


@router.post(V3 + "/catalog/products/{product_id}/custom-fields")
async def create_field(request: Request, store: StoreDep, product_id: int) -> JSONResponse:
    product = _product(store, product_id)
    body = await read_object(request)
    missing = {k: "is required" for k in ("name", "value") if not body.get(k)}
    if missing:
        raise invalid(missing)
    known = {f.id for f in product.custom_fields}
    apply_custom_fields(store, product, [{k: v for k, v in body.items() if k != "id"}])
    product.date_modified = store.now()
    new = next(f for f in product.custom_fields if f.id not in known)
    return ok(new.model_dump())


@router.get(V3 + "/catalog/products/{product_id}/custom-fields/{field_id}")
async def get_field(store: StoreDep, product_id: int, field_id: int) -> JSONResponse:
    return ok(_field(_product(store, product_id), field_id).model_dump())


@router.put(V3 + "/catalog/products/{product_id}/custom-fields/{field_id}")
async def update_field(
    request: Request, store: StoreDep, product_id: int, field_id: int
) -> JSONResponse:
    product = _product(store, product_id)
    _field(product, field_id)
    body = await read_object(request)
    apply_custom_fields(store, product, [{**body, "id": field_id}])
    product.date_modified = store.now()
    return ok(_field(product, field_id).model_dump())


@router.delete(V3 + "/catalog/products/{product_id}/custom-fields/{field_id}")
async def delete_field(store: StoreDep, product_id: int, field_id: int) -> Response:
    product = _product(store, product_id)
    _field(product, field_id)
    product.custom_fields = [f for f in product.custom_fields if f.id != field_id]
    product.date_modified = store.now()
    return no_content()


# -- categories ------------------------------------------------------------------------------


def _category_matches(c: Category, params: QueryParams) -> bool:
    if not range_ok(c.id, params, "id") or not range_ok(c.parent_id, params, "parent_id"):
        return False
    if (name := params.get("name")) is not None and c.name != name:
        return False
    if (like := params.get("name:like")) is not None and like.lower() not in c.name.lower():
        return False
    visible = q_bool(params, "is_visible")
    return visible is None or c.is_visible == visible


def category_body(category: Category) -> dict[str, Any]:
    data = category.model_dump()
    if category.custom_url is None:
        slug = category.name.lower().replace(" ", "-")
        data["custom_url"] = {"url": f"/{slug}/", "is_customized": False}
    return data


@router.get(V3 + "/catalog/categories")
async def list_categories(request: Request, store: StoreDep) -> JSONResponse:
    params = request.query_params
    page, limit = page_args(params)
    found = [c for c in store.categories.values() if _category_matches(c, params)]
    key = params.get("sort") or "id"
    if key not in ("id", "name", "parent_id", "sort_order"):
        raise invalid({"sort": "must be one of id, name, parent_id, sort_order"})
    found.sort(key=lambda c: (getattr(c, key), c.id))
    chunk, meta = paginate_v3(found, page, limit)
    return ok([category_body(c) for c in chunk], meta)


@router.get(V3 + "/catalog/categories/{category_id}")
async def get_category(store: StoreDep, category_id: int) -> JSONResponse:
    category = store.categories.get(category_id)
    if category is None:
        raise not_found(f"Category with id {category_id} not found.")
    return ok(category_body(category))
