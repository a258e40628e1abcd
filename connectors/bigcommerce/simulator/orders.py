"""Order rules: creating orders (from the v2 API or a shopper), stock taken and given back,
status changes, refunds and shipments (their v2 JSON is in ``orders_json.py``).

Stock follows ``update_stock_behavior: order_placed``: an order takes stock of tracked products when
it is created in a status other than Incomplete (0), Cancelled (5), Refunded (4) or Declined (6),
firing ``store/product/inventory/order/updated`` or ``store/sku/inventory/order/updated`` with
``method: "relative"`` and a negative ``value``. Moving the order to Cancelled or Refunded gives the
stock back (a positive ``value``); a partial refund does not.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from .catalog import Holder, holder_level, order_holder, set_level
from .formats import ApiError
from .orders_json import NO_STOCK_STATUSES, PAID_STATUSES, RESTOCK_STATUSES, STATUSES, totals
from .records import Order, OrderLine, Product, Shipment, Variant
from .state import Store


def out_of_stock(errors: list[dict[str, Any]]) -> ApiError:
    """BigCommerce's 409 for order lines that exceed the available stock (backorder.md §C)."""
    message = (
        "Quantities of one or more products are out of stock or did not meet quantity requirements."
    )
    return ApiError(409, message, details={"errors": errors})


def line_price(product: Product, variant: Variant | None) -> Decimal:
    if variant is not None and variant.sale_price:
        return Decimal(str(variant.sale_price))
    if variant is not None and variant.price is not None:
        return Decimal(str(variant.price))
    return Decimal(str(product.sale_price or product.price))


def check_stock(store: Store, wanted: list[tuple[Product, Variant | None, int]]) -> None:
    """Raise :func:`out_of_stock` when tracked stock cannot cover all the lines together."""
    needs: dict[tuple[int, int | None], tuple[Holder, int]] = {}
    for product, variant, quantity in wanted:
        holder = order_holder(store, product, variant)
        if holder is None:
            continue
        key = (product.id, holder[1].id if holder[1] is not None else None)
        previous = needs.get(key, (holder, 0))[1]
        needs[key] = (holder, previous + quantity)
    errors = []
    for (product_id, variant_id), (holder, quantity) in needs.items():
        available = holder_level(holder)
        if quantity > available:
            target = f"variant(id: {variant_id})" if variant_id else f"product(id: {product_id})"
            errors.append(
                {
                    "type": "OutOfStock",
                    "product_id": product_id,
                    "variant_id": variant_id,
                    "location_id": 1,
                    "available_quantity": available,
                    "message": f"Insufficient stock of {target}, available stock: {available}.",
                }
            )
    if errors:
        raise out_of_stock(errors)


def create_order(
    store: Store,
    wanted: list[tuple[Product, Variant | None, int]],
    *,
    customer_id: int = 0,
    status_id: int = 1,
    billing_address: dict[str, Any] | None = None,
    custom_lines: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Order:
    """Create an order, take stock and announce it (``store/order/created`` first)."""
    if status_id not in STATUSES:
        raise ApiError(400, f"The status_id {status_id} is not a valid order status.")
    takes_stock = status_id not in NO_STOCK_STATUSES
    if takes_stock:
        check_stock(store, wanted)
    now = store.now()
    order_id = store.next_id("order")
    address = dict(billing_address or default_address(store, customer_id))
    order = Order(
        id=order_id,
        customer_id=customer_id,
        status_id=status_id,
        date_created=now,
        date_modified=now,
        billing_address=address,
        shipping_address=address,
        order_address_id=store.next_id("order_address"),
        cart_id=str(uuid.uuid4()),
        payment_status="captured" if status_id in PAID_STATUSES else "",
        stock_held=takes_stock,
        **(extra or {}),
    )
    for product, variant, quantity in wanted:
        order.lines.append(
            OrderLine(
                id=store.next_id("order_product"),
                order_id=order_id,
                product_id=product.id,
                variant_id=(variant or store.base_variant(product.id) or _no_variant()).id,
                name=product.name,
                sku=variant.sku if variant else product.sku,
                type=product.type,
                price_ex_tax=line_price(product, variant),
                quantity=quantity,
                weight=product.weight,
                cost_price=Decimal(str(product.cost_price)),
                order_address_id=order.order_address_id,
            )
        )
    for custom in custom_lines or []:
        order.lines.append(
            OrderLine(
                id=store.next_id("order_product"),
                order_id=order_id,
                product_id=0,
                variant_id=0,
                name=str(custom["name"]),
                sku=str(custom.get("sku", "")),
                price_ex_tax=Decimal(str(custom.get("price_ex_tax", 0))),
                quantity=int(custom["quantity"]),
                order_address_id=order.order_address_id,
            )
        )
    store.orders[order_id] = order
    store.emit("store/order/created", {"type": "order", "id": order_id})
    touched: list[int] = []
    for product, variant, quantity in wanted:
        holder = order_holder(store, product, variant)
        if takes_stock and holder is not None:
            set_level(store, holder, holder_level(holder) - quantity, via_order=True)
        product.total_sold += quantity
        product.date_modified = now
        if product.id not in touched:
            touched.append(product.id)
    for product_id in touched:
        store.emit("store/product/updated", {"type": "product", "id": product_id})
    return order


def _no_variant() -> Variant:  # pragma: no cover - every product has a base or option variants
    raise ApiError(500, "product without variants")


def default_address(store: Store, customer_id: int) -> dict[str, Any]:
    customer = store.customers.get(customer_id)
    first, last = (customer.first_name, customer.last_name) if customer else ("Guest", "Shopper")
    email = customer.email if customer else "guest@example.com"
    return {
        "first_name": first,
        "last_name": last,
        "company": "",
        "street_1": "455 Main Street",
        "street_2": "",
        "city": "Austin",
        "state": "Texas",
        "zip": "78751",
        "country": "United States",
        "country_iso2": "US",
        "phone": "",
        "email": email,
    }


def set_status(store: Store, order: Order, status_id: int) -> bool:
    """Change the status; announce it and give stock back on cancel/refund. False if unchanged."""
    if status_id not in STATUSES:
        raise ApiError(400, f"The status_id {status_id} is not a valid order status.")
    previous = order.status_id
    if previous == status_id:
        return False
    order.status_id = status_id
    order.date_modified = store.now()
    if status_id in PAID_STATUSES and not order.payment_status:
        order.payment_status = "captured"
    if status_id == 4:
        order.payment_status = "refunded"
    status = {"previous_status_id": previous, "new_status_id": status_id}
    store.emit("store/order/statusUpdated", {"type": "order", "id": order.id, "status": status})
    if status_id in RESTOCK_STATUSES and order.stock_held:
        restock(store, order)
    return True


def restock(store: Store, order: Order) -> None:
    order.stock_held = False
    for line in order.lines:
        product = store.products.get(line.product_id)
        if product is None:
            continue
        variant = store.variants.get(line.variant_id)
        holder = order_holder(store, product, variant)
        if holder is not None:
            set_level(store, holder, holder_level(holder) + line.quantity, via_order=True)


def refund(store: Store, order: Order, amount: Decimal | None = None) -> int:
    """Record a refund (whole order when ``amount`` is None) and return its id."""
    left = totals(order)["total"] - order.refunded_amount
    amount = left if amount is None else amount
    if amount <= 0 or amount > left:
        raise ApiError(
            422, "The refund amount is not valid", {"amount": f"must be 0 < x <= {left}"}
        )
    order.refunded_amount += amount
    refund_id = store.next_id("refund")
    store.emit(
        "store/order/refund/created",
        {"type": "order", "id": order.id, "refund": {"refund_id": refund_id}},
    )
    full = order.refunded_amount >= totals(order)["total"]
    if full:
        for line in order.lines:
            line.quantity_refunded = line.quantity
    order.payment_status = "refunded" if full else "partially refunded"
    set_status(store, order, 4 if full else 14)
    store.emit("store/order/updated", {"type": "order", "id": order.id})
    return refund_id


def _address_id(order: Order, body: dict[str, Any]) -> int:
    """``order_address_id``: required, an integer, one of the order's shipping addresses."""
    given = body.get("order_address_id")
    if not isinstance(given, int) or isinstance(given, bool):
        raise ApiError(
            400,
            "The field 'order_address_id' is invalid: it is required and must be an integer, "
            f"the id of a shipping address of the order (GET /v2/orders/{order.id}"
            "/shipping_addresses).",
        )
    if given != order.order_address_id:
        raise ApiError(
            400,
            f"The field 'order_address_id' is invalid: order {order.id} has no shipping address "
            f"{given} (GET /v2/orders/{order.id}/shipping_addresses lists them).",
        )
    return given


def create_shipment(store: Store, order: Order, body: dict[str, Any]) -> Shipment:
    address_id = _address_id(order, body)
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise ApiError(400, "The field 'items' is invalid: at least one item is required.")
    lines = {line.id: line for line in order.lines}
    planned: list[tuple[OrderLine, int]] = []
    for item in items:
        line = lines.get(int(item.get("order_product_id") or 0)) if isinstance(item, dict) else None
        quantity = item.get("quantity") if isinstance(item, dict) else None
        if line is None or not isinstance(quantity, int) or quantity < 1:
            raise ApiError(
                400, "The field 'items' is invalid: unknown order_product_id or quantity."
            )
        if quantity > line.quantity - line.quantity_shipped:
            raise ApiError(
                400,
                f"Order product {line.id} has only "
                f"{line.quantity - line.quantity_shipped} item(s) left to ship.",
            )
        planned.append((line, quantity))
    now = store.now()
    shipment = Shipment(
        id=store.next_id("shipment"),
        order_id=order.id,
        customer_id=order.customer_id,
        order_address_id=address_id,
        date_created=now,
        tracking_number=str(body.get("tracking_number", "")),
        tracking_link=str(body.get("tracking_link", "")),
        shipping_method=str(body.get("shipping_method", "")),
        shipping_provider=str(body.get("shipping_provider", "")),
        tracking_carrier=str(body.get("tracking_carrier", "")),
        comments=str(body.get("comments", "")),
        items=[
            {"order_product_id": line.id, "product_id": line.product_id, "quantity": q}
            for line, q in planned
        ],
    )
    for line, quantity in planned:
        line.quantity_shipped += quantity
    store.shipments[shipment.id] = shipment
    order.date_shipped = now
    store.emit(
        "store/shipment/created", {"type": "shipment", "id": shipment.id, "orderId": order.id}
    )
    everything = all(line.quantity_shipped >= line.quantity for line in order.lines)
    set_status(store, order, 2 if everything else 3)
    store.emit("store/order/updated", {"type": "order", "id": order.id})
    return shipment
