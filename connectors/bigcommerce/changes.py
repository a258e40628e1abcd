"""What changed on an update: the fields Sous watches on products, variants, orders and
customers are kept in their snapshot (``bc_snapshot.fields``) each time the resource is read,
and an update event carries ``changed`` (the names of the watched fields whose value differs
from the snapshot) and ``previous`` (their values before), so a recipe fires on "price
changed" (``{"in": ["price", {"var": "changed"}]}``, or the trigger's ``fields: [price]``) or
"moved to category 23" (``{"in": [23, {"var": "product.categories"}]}`` and
``{"!": {"in": [23, {"var": "previous.categories"}]}}``), reading the new value from the
resource and the old one from ``previous``.

A field the snapshot does not hold (a resource first seen, or a field added to the watched list
since) is not reported as changed: its previous value is not known. Stock levels are left out:
the stock events report them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PRODUCT_FIELDS = (
    "name",
    "sku",
    "type",
    "price",
    "sale_price",
    "retail_price",
    "cost_price",
    "categories",
    "brand_id",
    "weight",
    "condition",
    "is_visible",
    "is_featured",
    "availability",
    "availability_description",
    "inventory_tracking",
    "inventory_warning_level",
    "is_preorder_only",
    "preorder_message",
    "preorder_release_date",
)
VARIANT_FIELDS = (
    "sku",
    "price",
    "sale_price",
    "retail_price",
    "cost_price",
    "weight",
    "purchasing_disabled",
    "purchasing_disabled_message",
    "inventory_warning_level",
)
ORDER_FIELDS = (
    "status_id",
    "payment_status",
    "payment_method",
    "staff_notes",
    "customer_message",
    "total_inc_tax",
    "subtotal_inc_tax",
    "shipping_cost_inc_tax",
    "discount_amount",
    "coupon_discount",
    "refunded_amount",
    "items_total",
    "billing_address",
    "is_deleted",
)
CUSTOMER_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "phone",
    "customer_group_id",
    "notes",
    "tax_exempt_category",
)


def watched(resource: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The watched fields ``resource`` has, as kept in a snapshot (lists of ids sorted)."""
    out: dict[str, Any] = {}
    for name in names:
        if name not in resource:
            continue
        value = resource[name]
        if isinstance(value, list) and all(isinstance(v, int | str) for v in value):
            value = sorted(value, key=str)
        out[name] = value
    return out


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """``{"changed": [names], "previous": {name: value before}}`` between two snapshots."""
    if not before:
        return {"changed": [], "previous": {}}
    changed = [name for name, value in after.items() if name in before and before[name] != value]
    return {"changed": changed, "previous": {name: before[name] for name in changed}}
