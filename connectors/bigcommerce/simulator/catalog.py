"""Catalog rules shared by the routes and the shoppers: stock, inventory webhooks, serialisation.

Where stock lives
    A product without option variants keeps its stock in ``Product.inventory_level`` (its base
    variant mirrors it). A product with option variants keeps per-variant stock in
    ``Variant.inventory_level`` and reports their sum when it tracks by ``variant``; when it tracks
    by ``product`` the product-level number counts. A *holder* is ``(product, None)`` for
    product-level stock or ``(product, variant)`` for variant-level stock.

Which webhooks a stock change fires (webhooks.md, "Inventory webhook semantics")
    * product-level change: ``store/product/inventory/updated`` (``…/inventory/order/updated`` when
      an order caused it) for a product without variants whatever its tracking, or for a product
      with variants that tracks by ``product``. ``value`` is the delta; ``method`` is ``relative``
      for order-driven changes and ``absolute`` for API changes. An API change to a tracked
      product's level also fires ``store/product/updated``.
    * variant-level change: ``store/sku/inventory/updated`` (or ``…/order/updated``) only when the
      product tracks by ``variant``; ``data.id`` is the variant's ``sku_id``.
    * and, for tracked stock, the location webhook of the location where the level changed
      (``store/channel/*/inventory/product/…``, see ``locations.py``).
"""

from __future__ import annotations

from typing import Any

from .formats import ApiError, iso
from .locations import DEFAULT_LOCATION, announce, level_at, stock_key
from .records import Product, Variant
from .state import Store

MAX_STOCK = 2_147_483_647
Holder = tuple[Product, Variant | None]


def has_options(store: Store, product: Product) -> bool:
    return bool(store.option_variants(product.id))


def product_level(store: Store, product: Product) -> int:
    """The ``inventory_level`` the Catalog API reports for ``product``."""
    if product.inventory_tracking == "variant" and has_options(store, product):
        return sum(v.inventory_level for v in store.option_variants(product.id))
    return product.inventory_level


def holder_level(holder: Holder) -> int:
    product, variant = holder
    return variant.inventory_level if variant is not None else product.inventory_level


def holder_for_variant(store: Store, variant: Variant) -> Holder:
    product = store.products[variant.product_id]
    return (product, None) if not variant.option_values else (product, variant)


def resolve_item(store: Store, item: dict[str, Any]) -> Holder:
    """The stock holder an adjustment item names (``sku``, ``variant_id`` or ``product_id``)."""
    if item.get("variant_id") is not None:
        variant = store.variants.get(int(item["variant_id"]))
        if variant is None:
            raise ApiError(
                422, "Unknown variant", {"variant_id": f"{item['variant_id']} not found"}
            )
        return holder_for_variant(store, variant)
    if item.get("sku") is not None:
        found = store.variant_by_sku(str(item["sku"]))
        if found is None:
            raise ApiError(422, "Unknown SKU", {"sku": f"{item['sku']} not found"})
        return holder_for_variant(store, found)
    product = store.products.get(int(item["product_id"]))
    if product is None:
        raise ApiError(422, "Unknown product", {"product_id": f"{item['product_id']} not found"})
    if has_options(store, product) and product.inventory_tracking != "product":
        raise ApiError(
            422,
            "Product has variants",
            {"product_id": "use variant_id or sku for a product with variants"},
        )
    return (product, None)


def order_holder(store: Store, product: Product, variant: Variant | None) -> Holder | None:
    """Whose stock an order line takes, or None when the product does not track inventory."""
    if product.inventory_tracking == "none":
        return None
    if product.inventory_tracking == "variant" and variant is not None and variant.option_values:
        return (product, variant)
    return (product, None)


def set_level(
    store: Store,
    holder: Holder,
    level: int,
    *,
    via_order: bool = False,
    product_event: bool = True,
    location: int = DEFAULT_LOCATION,
) -> int:
    """Set a holder's stock (its total over every location), fire the matching webhooks and
    return the delta. ``location`` is where the change happened (``locations.py``).

    ``product_event=False`` leaves ``store/product/updated`` to the caller (a product PUT that
    changes several fields announces the product once).
    """
    product, variant = holder
    level = max(0, min(level, MAX_STOCK))
    before = holder_level(holder)
    if variant is not None:
        variant.inventory_level = level
    else:
        product.inventory_level = level
    delta = level - before
    if delta:
        product.date_modified = store.now()
        fire_inventory(store, holder, delta, via_order=via_order, product_event=product_event)
        if product.inventory_tracking != "none" and len(store.locations) > 1:
            at = level_at(store, holder, location, level)
            announce(store, holder, location, at, via_order=via_order)
    return delta


def set_level_at(store: Store, holder: Holder, location: int, quantity: int) -> int:
    """Set the stock of ``holder`` at one location; the total follows. Returns the delta."""
    total = holder_level(holder)
    before = level_at(store, holder, location, total)
    if location != DEFAULT_LOCATION:
        store.stock_at[(stock_key(store, holder), location)] = quantity
    return set_level(store, holder, total - before + quantity, location=location)


def fire_inventory(
    store: Store, holder: Holder, delta: int, *, via_order: bool, product_event: bool = True
) -> None:
    product, variant = holder
    suffix = "inventory/order/updated" if via_order else "inventory/updated"
    method = "relative" if via_order else "absolute"
    if variant is None:
        if not has_options(store, product) or product.inventory_tracking == "product":
            inventory = {"product_id": product.id, "method": method, "value": delta}
            store.emit(
                f"store/product/{suffix}",
                {"type": "product", "id": product.id, "inventory": inventory},
            )
        if product.inventory_tracking != "none" and not via_order and product_event:
            store.emit("store/product/updated", {"type": "product", "id": product.id})
    elif product.inventory_tracking == "variant":
        inventory = {
            "product_id": product.id,
            "method": method,
            "value": delta,
            "variant_id": variant.id,
        }
        store.emit(
            f"store/sku/{suffix}", {"type": "sku", "id": variant.sku_id, "inventory": inventory}
        )


def release_preorders(store: Store) -> None:
    """Turn ``is_preorder_only`` pre-order products ``available`` once their release date passed."""
    now = store.now()
    for product in store.products.values():
        if (
            product.availability == "preorder"
            and product.is_preorder_only
            and product.preorder_release_date is not None
            and product.preorder_release_date <= now
        ):
            product.availability = "available"
            product.date_modified = now
            store.emit("store/product/updated", {"type": "product", "id": product.id})


# -- serialisation ---------------------------------------------------------------------------


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def serialize_variant(store: Store, variant: Variant) -> dict[str, Any]:
    product = store.products[variant.product_id]
    price = variant.price if variant.price is not None else product.price
    sale = variant.sale_price if variant.sale_price is not None else product.sale_price
    weight = variant.weight if variant.weight is not None else product.weight
    level = product.inventory_level if not variant.option_values else variant.inventory_level
    data = variant.model_dump(mode="json")
    data.update(
        {
            "price": _num(price),
            "sale_price": _num(sale),
            "cost_price": _num(_or(variant.cost_price, product.cost_price)),
            "retail_price": _num(_or(variant.retail_price, product.retail_price)),
            "weight": _num(weight),
            "width": _num(_or(variant.width, product.width)),
            "height": _num(_or(variant.height, product.height)),
            "depth": _num(_or(variant.depth, product.depth)),
            "fixed_cost_shipping_price": _num(
                _or(variant.fixed_cost_shipping_price, product.fixed_cost_shipping_price)
            ),
            "inventory_level": level,
            "calculated_price": _num(sale if sale else price),
            "calculated_weight": _num(weight),
        }
    )
    return data


def _or(value: float | None, fallback: float) -> float:
    return fallback if value is None else value


def serialize_product(
    store: Store,
    product: Product,
    include: set[str] | frozenset[str] = frozenset(),
    include_fields: list[str] | None = None,
    exclude_fields: list[str] | None = None,
) -> dict[str, Any]:
    data = product.model_dump(mode="json", exclude={"custom_fields", "option_set_id"})
    for key in ("price", "cost_price", "retail_price", "sale_price", "weight", "width", "depth"):
        data[key] = _num(data[key])
    for key in ("height", "map_price", "fixed_cost_shipping_price"):
        data[key] = _num(data[key])
    data["date_created"] = iso(product.date_created)
    data["date_modified"] = iso(product.date_modified)
    data["preorder_release_date"] = iso(product.preorder_release_date)
    if product.custom_url is None:
        data["custom_url"] = {"url": f"/products/{product.id}/", "is_customized": False}
    data["inventory_level"] = product_level(store, product)
    data["calculated_price"] = _num(product.sale_price or product.price)
    if product.option_set_id is not None:
        data["option_set_id"] = product.option_set_id
    base = store.base_variant(product.id)
    if base is not None and not has_options(store, product):
        data["base_variant_id"] = base.id
    if "custom_fields" in include:
        data["custom_fields"] = [cf.model_dump() for cf in product.custom_fields]
    if "variants" in include:
        data["variants"] = [serialize_variant(store, v) for v in store.variants_of(product.id)]
    if include_fields:
        keep = set(include_fields) | {"id"} | (set(include) & {"custom_fields", "variants"})
        data = {k: v for k, v in data.items() if k in keep}
    if exclude_fields:
        data = {k: v for k, v in data.items() if k not in set(exclude_fields) or k == "id"}
    return data
