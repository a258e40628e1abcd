"""Shoppers: storefront checkouts that obey BigCommerce's purchasability rules, and load bursts.

Purchasability, checked for every line before anything changes (all-or-nothing):

* the product must exist; a product with option variants needs a ``variant_id`` of its own
  (422 ``variant_required`` / ``not_found``);
* ``availability: "disabled"`` — listed but not purchasable → 422 ``disabled``;
* a variant with ``purchasing_disabled: true`` → 422 ``purchasing_disabled`` (with its message);
* ``order_quantity_minimum`` / ``order_quantity_maximum`` (0 = no limit) → 422
  ``quantity_below_minimum`` / ``quantity_above_maximum``;
* stock, when the product tracks inventory (``product``: the product's level, ``variant``: the
  variant's level; lines for the same stock add up): asking for more than is left → 409
  ``out_of_stock``. Untracked products (``inventory_tracking: "none"``) never run out.

Pre-order (``availability: "preorder"``), decided from backorder.md:

* **tracking off** — purchasable in any quantity; no stock moves. This is what selling beyond
  stock looks like on BigCommerce today: the GritGlobal BackOrder app turns inventory tracking off
  for the products it takes over so that they can keep selling (backorder.md §A).
* **tracking on** — the tracked level caps pre-orders exactly as it caps ordinary sales: each
  pre-order takes stock and the product is refused (409 ``out_of_stock``) once it is gone. Nothing
  in the stable documented surface lets a tracked product sell past zero — that is the job of the
  native Backorders beta (``backorder_limit``), which is not in the specs and not simulated
  (backorder.md §B to §D).

A successful checkout creates a v2 order in *Awaiting Fulfillment* (11) and fires what a storefront
order fires: ``store/order/created``, the inventory ``…/order/updated`` events for tracked stock
(``method: "relative"``, negative ``value``), ``store/product/updated`` per product (``total_sold``
changed) and ``store/order/statusUpdated`` (0 → 11).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from .catalog import Holder, holder_for_variant, release_preorders, set_level_at
from .formats import ApiError
from .locations import DEFAULT_LOCATION
from .orders import check_stock, create_order
from .records import Order, Product, Variant
from .state import Store


@dataclass(frozen=True)
class Line:
    product_id: int
    quantity: int = 1
    variant_id: int | None = None


class PurchaseRefused(Exception):
    """A checkout the store refused; ``reason`` is machine-readable, ``problems`` per line."""

    def __init__(self, status: int, reason: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(f"{reason}: {problems}")
        self.status = status
        self.reason = reason
        self.problems = problems

    def body(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "title": "The order cannot be placed",
            "type": "/_sim/errors/purchase-refused",
            "reason": self.reason,
            "errors": self.problems,
        }


def _refuse(status: int, reason: str, line: Line, message: str, **extra: Any) -> PurchaseRefused:
    problem = {
        "product_id": line.product_id,
        "variant_id": line.variant_id,
        "reason": reason,
        "message": message,
        **extra,
    }
    return PurchaseRefused(status, reason, [problem])


def purchasable(store: Store, lines: list[Line]) -> list[tuple[Product, Variant | None, int]]:
    """Check every rule above; return the resolved lines or raise :class:`PurchaseRefused`."""
    if not lines:
        raise PurchaseRefused(422, "empty", [{"reason": "empty", "message": "no lines"}])
    wanted: list[tuple[Product, Variant | None, int]] = []
    for line in lines:
        product = store.products.get(line.product_id)
        if product is None or line.quantity < 1:
            raise _refuse(422, "not_found", line, "unknown product or quantity below 1")
        variant: Variant | None = None
        if line.variant_id is not None:
            variant = store.variants.get(line.variant_id)
            if variant is None or variant.product_id != product.id:
                raise _refuse(422, "not_found", line, "unknown variant for this product")
        if store.option_variants(product.id) and (variant is None or not variant.option_values):
            raise _refuse(422, "variant_required", line, "choose one of the product's variants")
        if product.availability == "disabled":
            raise _refuse(422, "disabled", line, "the product is not purchasable")
        if variant is not None and variant.purchasing_disabled:
            message = variant.purchasing_disabled_message or "this variant cannot be purchased"
            raise _refuse(422, "purchasing_disabled", line, message)
        low, high = product.order_quantity_minimum, product.order_quantity_maximum
        if low and line.quantity < low:
            raise _refuse(422, "quantity_below_minimum", line, f"buy at least {low}")
        if high and line.quantity > high:
            raise _refuse(422, "quantity_above_maximum", line, f"buy at most {high}")
        wanted.append((product, variant, line.quantity))
    try:
        check_stock(store, wanted)
    except ApiError as exc:
        problems = [
            {**{k: v for k, v in e.items() if k != "type"}, "reason": "out_of_stock"}
            for e in (exc.details or {}).get("errors", [])
        ]
        raise PurchaseRefused(409, "out_of_stock", problems) from exc
    return wanted


def checkout(store: Store, lines: list[Line], *, customer_id: int = 0) -> Order:
    """Place a storefront order (see the module docstring for what it fires)."""
    if customer_id and customer_id not in store.customers:
        raise PurchaseRefused(
            422, "not_found", [{"reason": "not_found", "message": "unknown customer"}]
        )
    release_preorders(store)
    wanted = purchasable(store, lines)
    try:
        order = create_order(
            store,
            wanted,
            customer_id=customer_id,
            status_id=11,
            extra={"order_source": "www", "payment_method": "Credit Card"},
        )
    except ApiError as exc:  # pragma: no cover - purchasable() checked the same stock
        raise PurchaseRefused(409, "out_of_stock", []) from exc
    status = {"previous_status_id": 0, "new_status_id": 11}
    store.emit("store/order/statusUpdated", {"type": "order", "id": order.id, "status": status})
    return order


def stock_holder(store: Store, product_id: int, variant_id: int | None = None) -> Holder:
    """The stock holder of a product, or of one of its variants."""
    product = store.products.get(product_id)
    if product is None:
        raise ApiError(404, f"Product {product_id} not found.")
    if variant_id is None:
        return (product, None)
    variant = store.variants.get(variant_id)
    if variant is None or variant.product_id != product_id:
        raise ApiError(404, f"Variant {variant_id} not found.")
    return holder_for_variant(store, variant)


def set_stock(
    store: Store,
    product_id: int,
    level: int,
    variant_id: int | None = None,
    location_id: int = DEFAULT_LOCATION,
) -> int:
    """Set stock (at a location) as the control panel does (fires the inventory webhooks);
    return the delta."""
    return set_level_at(store, stock_holder(store, product_id, variant_id), location_id, level)


@dataclass
class BurstResult:
    orders_placed: list[int] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    inventory_updates: int = 0
    events: int = 0

    def public(self) -> dict[str, Any]:
        return {
            "orders_placed": len(self.orders_placed),
            "order_ids": self.orders_placed,
            "orders_refused": sum(self.refused.values()),
            "refused_by_reason": self.refused,
            "inventory_updates": self.inventory_updates,
            "events": self.events,
        }


def burst(
    store: Store,
    *,
    orders: int,
    product_ids: list[int] | None = None,
    products: int | None = None,
    inventory_updates: int = 0,
    quantity: int = 1,
    restock_level: int = 25,
) -> BurstResult:
    """N orders (and K stock updates, interleaved) spread round-robin over M products.

    ``product_ids`` names the products; otherwise the first ``products`` (all when None) purchasable
    products by id. A product with variants cycles through its purchasable variants. Refused
    orders are counted by reason, not raised. A stock update sets a product (or variant) to
    ``restock_level``, as a merchant restocking during a sale would.
    """
    pool = (
        product_ids
        or [
            p.id
            for p in sorted(store.products.values(), key=lambda p: p.id)
            if p.availability != "disabled"
        ][:products]
    )
    if not pool:
        raise ApiError(422, "No products to buy", {"product_ids": "none purchasable"})
    targets: list[Line] = []
    for product_id in pool:
        options = [v for v in store.option_variants(product_id) if not v.purchasing_disabled]
        targets += [Line(product_id, quantity, v.id) for v in options] or [
            Line(product_id, quantity)
        ]
    before = len(store.events)
    result = BurstResult()
    cycle = itertools.cycle(targets)
    every = max(1, orders // inventory_updates) if inventory_updates else 0
    for index in range(orders):
        line = next(cycle)
        try:
            result.orders_placed.append(checkout(store, [line]).id)
        except PurchaseRefused as exc:
            result.refused[exc.reason] = result.refused.get(exc.reason, 0) + 1
        if every and (index + 1) % every == 0 and result.inventory_updates < inventory_updates:
            set_stock(store, line.product_id, restock_level, line.variant_id)
            result.inventory_updates += 1
    while result.inventory_updates < inventory_updates:
        line = next(cycle)
        set_stock(store, line.product_id, restock_level, line.variant_id)
        result.inventory_updates += 1
    result.events = len(store.events) - before
    return result
