"""Product writes shared by the catalog routes and the seed: create, update, custom fields."""

from __future__ import annotations

from typing import Any

from .catalog import set_level
from .formats import ApiError, invalid
from .records import (
    PRODUCT_READ_ONLY,
    PRODUCT_TRIGGER_FIELDS,
    Category,
    CustomField,
    OptionValue,
    Product,
    Variant,
    build,
    merged,
)
from .state import Store

REQUIRED_ON_CREATE = ("name", "type", "weight", "price")


def check_conflicts(store: Store, product: Product) -> None:
    """409 for a duplicate name or SKU, or an unknown category (as the spec's 409 describes)."""
    for other in store.products.values():
        if other.id == product.id:
            continue
        if other.name == product.name:
            raise ApiError(409, "Product name is a duplicate", {"name": "must be unique"})
        if product.sku and other.sku == product.sku:
            raise ApiError(409, "Product SKU is a duplicate", {"sku": "must be unique"})
    missing = [c for c in product.categories if c not in store.categories]
    if missing:
        raise ApiError(409, "Category does not exist", {"categories": f"unknown ids {missing}"})


def apply_custom_fields(store: Store, product: Product, items: Any) -> None:
    if not isinstance(items, list):
        raise invalid({"custom_fields": "must be an array"})
    fields = {cf.id: cf for cf in product.custom_fields}
    for item in items:
        if not isinstance(item, dict):
            raise invalid({"custom_fields": "items must be objects"})
        if item.get("id") in fields:
            fields[item["id"]] = merged(fields[item["id"]], item, read_only=frozenset({"id"}))
        else:
            new = build(CustomField, {**item, "id": store.next_id("custom_field")})
            fields[new.id] = new
    if len(fields) > 200:
        raise invalid({"custom_fields": "a product can have at most 200 custom fields"})
    product.custom_fields = list(fields.values())


def create_variant(store: Store, product: Product, body: dict[str, Any]) -> Variant:
    """A new option variant of ``product`` (fires ``store/sku/created``)."""
    values = []
    for raw in body.get("option_values") or []:
        if not isinstance(raw, dict) or not raw.get("label"):
            raise invalid({"option_values": "each option value needs a label"})
        name = str(raw.get("option_display_name") or "Option")
        option_id = int(raw.get("option_id") or 0) or _option_id(store, product.id, name)
        value_id = int(raw.get("id") or 0) or store.next_id("option_value")
        values.append(
            OptionValue(
                id=value_id, label=str(raw["label"]), option_id=option_id, option_display_name=name
            )
        )
    if not values:
        raise invalid({"option_values": "a variant needs at least one option value"})
    sku = str(body.get("sku") or "")
    if not sku:
        raise invalid({"sku": "is required"})
    if store.variant_by_sku(sku) is not None or any(p.sku == sku for p in store.products.values()):
        raise ApiError(409, "SKU is a duplicate", {"sku": "must be unique"})
    fields = {k: v for k, v in body.items() if k not in ("id", "product_id", "sku_id")}
    variant = build(
        Variant,
        {
            **fields,
            "id": store.next_id("variant"),
            "product_id": product.id,
            "sku_id": store.next_id("sku"),
            "sku": sku,
            "option_values": [v.model_dump() for v in values],
        },
    )
    base = store.base_variant(product.id)
    if base is not None:  # a product with options has no base variant
        del store.variants[base.id]
    store.variants[variant.id] = variant
    product.date_modified = store.now()
    store.emit(
        "store/sku/created",
        {
            "type": "sku",
            "id": variant.sku_id,
            "sku": {"product_id": product.id, "variant_id": variant.id},
        },
    )
    return variant


def _option_id(store: Store, product_id: int, name: str) -> int:
    for variant in store.variants_of(product_id):
        for value in variant.option_values:
            if value.option_display_name == name:
                return value.option_id
    return store.next_id("option")


def create_product(store: Store, body: dict[str, Any], *, announce: bool = True) -> Product:
    missing = {f: "is required" for f in REQUIRED_ON_CREATE if body.get(f) is None}
    if missing:
        raise invalid(missing, "The product is missing required fields")
    now = store.now()
    fields = {k: v for k, v in body.items() if k not in PRODUCT_READ_ONLY and k != "variants"}
    product = build(
        Product,
        {**fields, "id": store.next_id("product"), "date_created": now, "date_modified": now},
    )
    check_conflicts(store, product)
    variants = body.get("variants") or []
    if not isinstance(variants, list):
        raise invalid({"variants": "must be an array"})
    store.products[product.id] = product
    try:
        if body.get("custom_fields"):
            apply_custom_fields(store, product, body["custom_fields"])
        base = Variant(
            id=store.next_id("variant"),
            product_id=product.id,
            sku=product.sku,
            sku_id=store.next_id("sku"),
        )
        store.variants[base.id] = base
        for raw in variants:
            if not isinstance(raw, dict):
                raise invalid({"variants": "items must be objects"})
            create_variant(store, product, raw)
    except ApiError:
        for variant in store.variants_of(product.id):
            del store.variants[variant.id]
        del store.products[product.id]
        raise
    if announce:
        store.emit("store/product/created", {"type": "product", "id": product.id})
    return product


def update_product(store: Store, product: Product, body: dict[str, Any]) -> Product:
    """Apply a PUT body: validate everything first, then change, then announce once."""
    changes = {k: v for k, v in body.items() if k not in PRODUCT_READ_ONLY}
    level = changes.pop("inventory_level", None)
    candidate = merged(product, changes)
    if level is not None:
        merged(product, {"inventory_level": level})  # validates the number
    check_conflicts(store, candidate)
    before = product.model_dump()
    after = candidate.model_dump()
    changed = {k for k in after if after[k] != before[k]}
    for key in changed:
        setattr(product, key, getattr(candidate, key))
    if "custom_fields" in body:
        apply_custom_fields(store, product, body["custom_fields"])
    base = store.base_variant(product.id)
    if base is not None and "sku" in changed:
        base.sku = product.sku
    stock_changed = False
    if level is not None:
        stock_changed = set_level(store, (product, None), int(level), product_event=False) != 0
    if changed or stock_changed or "custom_fields" in body:
        product.date_modified = store.now()
    tracked_stock = stock_changed and product.inventory_tracking != "none"
    if changed & PRODUCT_TRIGGER_FIELDS or tracked_stock:
        store.emit("store/product/updated", {"type": "product", "id": product.id})
    return product


def delete_product(store: Store, product: Product) -> None:
    for variant in store.variants_of(product.id):
        del store.variants[variant.id]
    del store.products[product.id]
    store.emit("store/product/deleted", {"type": "product", "id": product.id})


def add_category(store: Store, name: str, parent_id: int = 0, **extra: Any) -> Category:
    if parent_id and parent_id not in store.categories:
        raise ApiError(422, "Parent category does not exist", {"parent_id": "not found"})
    category = build(
        Category, {**extra, "id": store.next_id("category"), "name": name, "parent_id": parent_id}
    )
    store.categories[category.id] = category
    return category
