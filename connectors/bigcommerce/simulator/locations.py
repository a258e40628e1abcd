"""Inventory locations (multi-location inventory, *Buy Online, Pick up in Store*) and their
webhooks (docs/integrations/webhooks/events/inventory-location.mdx).

Location 1 is the store's default location and exists in every store; more are made through the
control API (``POST /_sim/stores/{hash}/locations``), which fires
``store/inventory/location/created``, and changed (``PATCH …/locations/{id}``), which fires
``…/updated``. A holder's ``inventory_level`` (product or variant) stays the *total* over all
locations, as the Catalog API reports it; the part at each location other than 1 is kept in
``store.stock_at`` and location 1 holds the rest. Orders take stock from location 1.

Once a store has more than one location (a difference on purpose: BigCommerce fires these for
every store; with one location they say what the product's own inventory webhooks say, and the
simulator's other tests count those), every change of a level at a location fires one event
with ``data: {variant_id, product_id, location_id}`` (for a product without options, its base
variant's id): an order that takes the level to zero fires
``store/channel/*/inventory/product/out_of_stock_reached``, one that takes it to or below the
warning level ``…/low_stock_reached``; any other change (control panel, absolute or relative
adjustment, catalog write) ``…/stock_changed``. A change of a location's
warning level fires ``…/settings_changed``.
"""

from __future__ import annotations

from typing import Any

from .formats import ApiError
from .records import Product, Variant
from .state import Store

DEFAULT_LOCATION = 1
INVENTORY_SCOPE = "store/channel/*/inventory/product/{}"
STOCK_CHANGED, LOW_STOCK, OUT_OF_STOCK, SETTINGS = (
    "stock_changed",
    "low_stock_reached",
    "out_of_stock_reached",
    "settings_changed",
)

Holder = tuple[Product, Variant | None]


def default_location(store: Store) -> dict[str, Any]:
    return {
        "id": DEFAULT_LOCATION,
        "code": "BC-LOCATION-1",
        "label": "Default location",
        "enabled": True,
        "type_id": "PHYSICAL",
        "storefront_visibility": True,
        "created_at": store.now().replace(hour=0, minute=0, second=0, microsecond=0),
    }


def locations_of(store: Store) -> dict[int, dict[str, Any]]:
    """Every location of the store (the default one is made on first use)."""
    if DEFAULT_LOCATION not in store.locations:
        store.locations[DEFAULT_LOCATION] = default_location(store)
    return store.locations


def location(store: Store, location_id: Any) -> dict[str, Any]:
    found = locations_of(store).get(location_id) if isinstance(location_id, int) else None
    if found is None:
        raise ApiError(
            422, "Input is invalid", {"location_id": f"location {location_id} not found"}
        )
    return found


def create_location(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    known = locations_of(store)
    code, label = body.get("code"), body.get("label")
    if not isinstance(code, str) or not code or not isinstance(label, str) or not label:
        raise ApiError(422, "Input is invalid", {"code": "required", "label": "required"})
    if any(loc["code"] == code for loc in known.values()):
        raise ApiError(422, "Input is invalid", {"code": f"{code!r} is taken"})
    record = {
        **default_location(store),
        "id": max(known) + 1,
        "code": code,
        "label": label,
        "enabled": bool(body.get("enabled", True)),
        "created_at": store.now(),
    }
    known[record["id"]] = record
    store.emit("store/inventory/location/created", {"location_id": record["id"]})
    return record


def update_location(store: Store, location_id: int, body: dict[str, Any]) -> dict[str, Any]:
    record = location(store, location_id)
    for name in ("code", "label"):
        if name in body and (not isinstance(body[name], str) or not body[name]):
            raise ApiError(422, "Input is invalid", {name: "must be a non-empty string"})
    if "enabled" in body and not isinstance(body["enabled"], bool):
        raise ApiError(422, "Input is invalid", {"enabled": "must be a boolean"})
    record.update({k: body[k] for k in ("code", "label", "enabled") if k in body})
    store.emit("store/inventory/location/updated", {"location_id": location_id})
    return record


def stock_key(store: Store, holder: Holder) -> int:
    """The variant id a holder's stock is kept under (a product's base variant)."""
    product, variant = holder
    if variant is not None:
        return variant.id
    base = store.base_variant(product.id)
    return base.id if base is not None else product.id


def level_at(store: Store, holder: Holder, location_id: int, total: int) -> int:
    key = stock_key(store, holder)
    if location_id != DEFAULT_LOCATION:
        return store.stock_at.get((key, location_id), 0)
    elsewhere = sum(v for (k, loc), v in store.stock_at.items() if k == key)
    return total - elsewhere


def elsewhere(store: Store, holder: Holder) -> int:
    """Stock held at locations other than the default one."""
    key = stock_key(store, holder)
    return sum(v for (k, _), v in store.stock_at.items() if k == key)


def warning_at(store: Store, holder: Holder, location_id: int) -> int:
    product, variant = holder
    if location_id == DEFAULT_LOCATION:
        return variant.inventory_warning_level if variant else product.inventory_warning_level
    return store.warning_at.get((stock_key(store, holder), location_id), 0)


def announce(
    store: Store, holder: Holder, location_id: int, level: int, *, via_order: bool
) -> None:
    """The location webhook for a level that changed at ``location_id``."""
    product, _ = holder
    name = STOCK_CHANGED
    if via_order:
        warning = warning_at(store, holder, location_id)
        if level <= 0:
            name = OUT_OF_STOCK
        elif warning > 0 and level <= warning:
            name = LOW_STOCK
    data = {
        "variant_id": stock_key(store, holder),
        "product_id": product.id,
        "location_id": location_id,
    }
    store.emit(INVENTORY_SCOPE.format(name), data)


def set_warning_at(store: Store, holder: Holder, location_id: int, warning: int) -> None:
    """A location's warning level for a holder (the default location's is the catalog's)."""
    product, variant = holder
    if location_id == DEFAULT_LOCATION:
        if variant is not None:
            variant.inventory_warning_level = warning
        else:
            product.inventory_warning_level = warning
    else:
        store.warning_at[(stock_key(store, holder), location_id)] = warning
    data = {
        "variant_id": stock_key(store, holder),
        "product_id": product.id,
        "location_id": location_id,
    }
    store.emit(INVENTORY_SCOPE.format(SETTINGS), data)
