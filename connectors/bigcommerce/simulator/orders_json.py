"""The v2 JSON of orders, order products, shipments and order statuses.

Dates are RFC-2822, money is a string with four decimals, as the Orders v2 spec's examples show.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .formats import money, rfc2822
from .records import Order, OrderLine, Shipment
from .state import Store

STATUSES: dict[int, tuple[str, str]] = {
    0: (
        "Incomplete",
        "An incomplete order happens when a shopper reached the payment page, "
        "but did not complete the transaction.",
    ),
    1: ("Pending", "Customer started the checkout process, but did not complete it."),
    2: (
        "Shipped",
        "Order has been shipped, but receipt has not been confirmed; seller "
        "has used the Ship Items action.",
    ),
    3: (
        "Partially Shipped",
        "Only some items in the order have been shipped, due to some products "
        "being pre-order only or other reasons.",
    ),
    4: ("Refunded", "Seller has used the Refund action."),
    5: (
        "Cancelled",
        "Seller has cancelled an order, due to a stock inconsistency or other reasons.",
    ),
    6: (
        "Declined",
        "Seller has marked the order as declined for lack of manual payment, or other reasons.",
    ),
    7: (
        "Awaiting Payment",
        "Customer has completed checkout process, but payment has yet to be confirmed.",
    ),
    8: (
        "Awaiting Pickup",
        "Order has been pulled, and is awaiting customer pickup from a seller-specified location.",
    ),
    9: (
        "Awaiting Shipment",
        "Order has been pulled and packaged, and is awaiting collection from a shipping provider.",
    ),
    10: (
        "Completed",
        "Client has paid for their digital product and their file(s) are available for download.",
    ),
    11: (
        "Awaiting Fulfillment",
        "Customer has completed the checkout process and payment has been confirmed.",
    ),
    12: (
        "Manual Verification Required",
        "Order is on hold while some aspect needs to be manually confirmed.",
    ),
    13: (
        "Disputed",
        "Customer has initiated a dispute resolution process for the PayPal "
        "transaction that paid for the order.",
    ),
    14: ("Partially Refunded", "Seller has partially refunded the order."),
}
#: Sort order of the statuses in ``/orders/count`` (as in the spec's example).
STATUS_ORDER = [0, 1, 7, 11, 9, 8, 3, 10, 2, 5, 6, 4, 13, 12, 14]
NO_STOCK_STATUSES = frozenset({0, 4, 5, 6})
RESTOCK_STATUSES = frozenset({4, 5})
PAID_STATUSES = frozenset({2, 3, 8, 9, 10, 11, 14})


def status_body(status_id: int) -> dict[str, Any]:
    name, description = STATUSES[status_id]
    return {
        "id": status_id,
        "name": name,
        "system_label": name,
        "custom_label": name,
        "system_description": description,
        "order": STATUS_ORDER.index(status_id),
    }


def totals(order: Order) -> dict[str, Decimal]:
    subtotal = sum((line.price_ex_tax * line.quantity for line in order.lines), Decimal(0))
    return {"subtotal": subtotal, "total": subtotal + order.shipping_cost}


def order_body(store: Store, order: Order, base_url: str) -> dict[str, Any]:
    sums = totals(order)
    zero = money(0)
    link = f"{base_url}/v2/orders/{order.id}"
    address = {**order.billing_address, "form_fields": []}
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "date_created": rfc2822(order.date_created),
        "date_modified": rfc2822(order.date_modified),
        "date_shipped": rfc2822(order.date_shipped),
        "status_id": order.status_id,
        "status": STATUSES[order.status_id][0],
        "custom_status": STATUSES[order.status_id][0],
        "subtotal_ex_tax": money(sums["subtotal"]),
        "subtotal_inc_tax": money(sums["subtotal"]),
        "subtotal_tax": zero,
        "base_shipping_cost": money(order.shipping_cost),
        "shipping_cost_ex_tax": money(order.shipping_cost),
        "shipping_cost_inc_tax": money(order.shipping_cost),
        "shipping_cost_tax": zero,
        "shipping_cost_tax_class_id": 2,
        "base_handling_cost": zero,
        "handling_cost_ex_tax": zero,
        "handling_cost_inc_tax": zero,
        "handling_cost_tax": zero,
        "handling_cost_tax_class_id": 2,
        "base_wrapping_cost": zero,
        "wrapping_cost_ex_tax": zero,
        "wrapping_cost_inc_tax": zero,
        "wrapping_cost_tax": zero,
        "wrapping_cost_tax_class_id": 3,
        "total_ex_tax": money(sums["total"]),
        "total_inc_tax": money(sums["total"]),
        "total_tax": zero,
        "is_tax_inclusive_pricing": False,
        "items_total": sum(line.quantity for line in order.lines),
        "items_shipped": sum(line.quantity_shipped for line in order.lines),
        "payment_method": order.payment_method,
        "payment_provider_id": "",
        "payment_status": order.payment_status,
        "refunded_amount": money(order.refunded_amount),
        "order_is_digital": all(line.type == "digital" for line in order.lines)
        and bool(order.lines),
        "store_credit_amount": zero,
        "gift_certificate_amount": zero,
        "ip_address": order.ip_address,
        "ip_address_v6": "",
        "geoip_country": "United States",
        "geoip_country_iso2": "US",
        "currency_id": 1,
        "currency_code": "USD",
        "currency_exchange_rate": "1.0000000000",
        "default_currency_id": 1,
        "default_currency_code": "USD",
        "store_default_currency_code": "USD",
        "store_default_to_transactional_exchange_rate": "1.0000000000",
        "staff_notes": order.staff_notes,
        "customer_message": order.customer_message,
        "discount_amount": zero,
        "coupon_discount": zero,
        "shipping_address_count": 1,
        "is_deleted": order.is_deleted,
        "ebay_order_id": "0",
        "cart_id": order.cart_id,
        "billing_address": address,
        "is_email_opt_in": False,
        "credit_card_type": None,
        "order_source": order.order_source,
        "channel_id": order.channel_id,
        "external_source": order.external_source,
        "external_id": None,
        "external_merchant_id": None,
        "tax_provider_id": "BasicTaxProvider",
        "customer_locale": order.customer_locale,
        "external_order_id": "",
        "products": {"url": f"{link}/products", "resource": f"/orders/{order.id}/products"},
        "shipping_addresses": {
            "url": f"{link}/shipping_addresses",
            "resource": f"/orders/{order.id}/shipping_addresses",
        },
        "coupons": {"url": f"{link}/coupons", "resource": f"/orders/{order.id}/coupons"},
    }


def line_body(store: Store, line: OrderLine) -> dict[str, Any]:
    price = money(line.price_ex_tax)
    total = money(line.price_ex_tax * line.quantity)
    zero = money(0)
    variant = store.variants.get(line.variant_id)
    options = []
    for value in variant.option_values if variant else []:
        options.append(
            {
                "id": value.id,
                "option_id": value.option_id,
                "order_product_id": line.id,
                "product_option_id": value.option_id,
                "display_name": value.option_display_name,
                "display_name_customer": value.option_display_name,
                "display_name_merchant": value.option_display_name,
                "display_value": value.label,
                "display_value_customer": value.label,
                "display_value_merchant": value.label,
                "value": str(value.id),
                "type": "Multiple choice",
                "name": value.option_display_name,
                "display_style": "Rectangle",
            }
        )
    return {
        "id": line.id,
        "order_id": line.order_id,
        "product_id": line.product_id,
        "variant_id": line.variant_id,
        "order_address_id": line.order_address_id,
        "name": line.name,
        "name_customer": line.name,
        "name_merchant": line.name,
        "sku": line.sku,
        "upc": "",
        "type": line.type,
        "base_price": price,
        "price_ex_tax": price,
        "price_inc_tax": price,
        "price_tax": zero,
        "base_total": total,
        "total_ex_tax": total,
        "total_inc_tax": total,
        "total_tax": zero,
        "weight": line.weight,
        "width": zero,
        "height": zero,
        "depth": zero,
        "quantity": line.quantity,
        "base_cost_price": money(line.cost_price),
        "cost_price_inc_tax": money(line.cost_price),
        "cost_price_ex_tax": money(line.cost_price),
        "cost_price_tax": zero,
        "is_refunded": line.quantity_refunded >= line.quantity,
        "quantity_refunded": line.quantity_refunded,
        "refund_amount": zero,
        "return_id": 0,
        "wrapping_id": 0,
        "wrapping_name": "",
        "base_wrapping_cost": zero,
        "wrapping_cost_ex_tax": zero,
        "wrapping_cost_inc_tax": zero,
        "wrapping_cost_tax": zero,
        "wrapping_message": "",
        "quantity_shipped": line.quantity_shipped,
        "event_name": None,
        "event_date": None,
        "fixed_shipping_cost": zero,
        "ebay_item_id": "",
        "ebay_transaction_id": "",
        "option_set_id": None,
        "parent_order_product_id": None,
        "is_bundled_product": False,
        "bin_picking_number": "",
        "external_id": None,
        "brand": "",
        "applied_discounts": [],
        "product_options": options,
        "configurable_fields": [],
        "gift_certificate_id": None,
        "discounted_total_inc_tax": total,
    }


def shipment_body(store: Store, shipment: Shipment) -> dict[str, Any]:
    order = store.orders[shipment.order_id]
    billing = {k: v for k, v in order.billing_address.items() if k != "form_fields"}
    shipping = dict(order.shipping_address or billing)
    data = shipment.model_dump(mode="json")
    data.update(
        {
            "date_created": rfc2822(shipment.date_created),
            "merchant_shipping_cost": money(shipment.merchant_shipping_cost),
            "billing_address": billing,
            "shipping_address": shipping,
            "shipping_provider_display_name": shipment.shipping_provider or "Custom",
            "generated_tracking_link": shipment.tracking_link,
        }
    )
    return data


ADDRESS_FIELDS = ("first_name", "last_name", "company", "street_1", "street_2", "city", "state",
                  "zip", "country", "country_iso2", "phone", "email")  # fmt: skip


def shipping_address_body(order: Order, base_url: str) -> dict[str, Any]:
    """The order's one shipping address (``order_address_id``), as ``orderShippingAddress``."""
    billing = {k: v for k, v in order.billing_address.items() if k != "form_fields"}
    address = dict(order.shipping_address or billing)
    physical = [line for line in order.lines if line.type == "physical"]
    cost, zero = money(order.shipping_cost), money(0)
    path = f"/orders/{order.id}/shipping_addresses/{order.order_address_id}/shipping_quotes"
    return {
        "id": order.order_address_id,
        "order_id": order.id,
        **{key: str(address.get(key, "")) for key in ADDRESS_FIELDS},
        "items_total": sum(line.quantity for line in physical),
        "items_shipped": sum(line.quantity_shipped for line in physical),
        "shipping_method": "Flat Rate" if order.shipping_cost else "Free Shipping",
        "base_cost": cost,
        "cost_ex_tax": cost,
        "cost_inc_tax": cost,
        "cost_tax": zero,
        "cost_tax_class_id": 2,
        "base_handling_cost": zero,
        "handling_cost_ex_tax": zero,
        "handling_cost_inc_tax": zero,
        "handling_cost_tax": zero,
        "handling_cost_tax_class_id": 2,
        "shipping_zone_id": 1,
        "shipping_zone_name": "United States",
        "shipping_quotes": {"url": f"{base_url}/v2{path}", "resource": path},
        "form_fields": [],
    }
