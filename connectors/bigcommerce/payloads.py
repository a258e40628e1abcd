"""Shaping fetched BigCommerce resources into event payloads, and realistic sample payloads.

Products come from Catalog v3 with their variants, and ``custom_fields`` becomes a ``name →
value`` object. Orders come from Orders v2 with their lines in ``order.products``; money strings
(``"89.0000"``) become numbers and RFC-2822 dates become ISO 8601, so conditions compare numbers
and templates format dates.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

# -- shaping -------------------------------------------------------------------------------------


def as_int(value: Any) -> int | None:
    """``value`` as an int, or ``None`` if it is missing or not a number."""
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def dedup_key(text: str) -> str:
    """``text`` if it fits the inbox's key column, else a prefix and a digest of it."""
    if len(text) <= 200:
        return text
    return text[:150] + "~" + hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - a key


def digest(value: Any) -> str:
    """A short fingerprint of a JSON value (part of state-derived dedup keys)."""
    blob = json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:12]  # noqa: S324 - a fingerprint, not security


_MONEY = re.compile(r"^-?\d+\.\d{2,4}$")
_DATES = ("date_created", "date_modified", "date_shipped")


def product_payload(raw: dict[str, Any]) -> dict[str, Any]:
    product = dict(raw)
    fields = product.get("custom_fields")
    if isinstance(fields, list):
        product["custom_fields"] = {
            str(f.get("name")): str(f.get("value", "")) for f in fields if isinstance(f, dict)
        }
    product.setdefault("custom_fields", {})
    product.setdefault("variants", [])
    return product


def _plain(value: Any, key: str) -> Any:
    if isinstance(value, str) and _MONEY.match(value):
        return float(value)
    if key in _DATES and isinstance(value, str) and value:
        try:
            return parsedate_to_datetime(value).astimezone(UTC).isoformat()
        except (TypeError, ValueError):
            return value
    return value


def order_payload(raw: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
    order = {k: _plain(v, k) for k, v in raw.items()}
    order["products"] = [{k: _plain(v, k) for k, v in line.items()} for line in lines]
    for key in ("shipping_addresses", "coupons"):
        order.pop(key, None)  # links to other resources, not data
    return order


def shipment_payload(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v, k) for k, v in raw.items()}


# -- samples ------------------------------------------------------------------------------------

SAMPLE_PRODUCT: dict[str, Any] = {
    "id": 111,
    "name": "Cat Eye Sunglasses",
    "sku": "SUN-CATEYE",
    "type": "physical",
    "price": 89,
    "sale_price": 0,
    "inventory_level": 0,
    "inventory_warning_level": 5,
    "inventory_tracking": "product",
    "availability": "available",
    "availability_description": "",
    "is_visible": True,
    "is_preorder_only": False,
    "preorder_message": "",
    "preorder_release_date": None,
    "categories": [18, 19],
    "custom_fields": {"Lens": "Polarized", "UV protection": "UV400"},
    "variants": [
        {
            "id": 301,
            "product_id": 111,
            "sku": "SUN-CATEYE",
            "inventory_level": 0,
            "inventory_warning_level": 0,
            "purchasing_disabled": False,
            "purchasing_disabled_message": "",
            "option_values": [],
        }
    ],
    "total_sold": 31,
    "date_modified": "2026-11-27T09:00:00+00:00",
}
SAMPLE_VARIANT: dict[str, Any] = {
    "id": 305,
    "product_id": 112,
    "sku": "SUN-AVI-SLV",
    "inventory_level": 0,
    "inventory_warning_level": 2,
    "purchasing_disabled": False,
    "purchasing_disabled_message": "",
    "option_values": [
        {"id": 1002, "label": "Silver", "option_id": 101, "option_display_name": "Frame"}
    ],
}
SAMPLE_VARIANT_PRODUCT: dict[str, Any] = {
    **SAMPLE_PRODUCT,
    "id": 112,
    "name": "Aviator Sunglasses",
    "sku": "SUN-AVIATOR",
    "inventory_tracking": "variant",
    "inventory_level": 13,
    "variants": [SAMPLE_VARIANT],
}
SAMPLE_ORDER: dict[str, Any] = {
    "id": 107,
    "status_id": 11,
    "status": "Awaiting Fulfillment",
    "channel_id": 1,
    "customer_id": 1,
    "date_created": "2026-11-27T09:00:00+00:00",
    "date_modified": "2026-11-27T09:00:00+00:00",
    "subtotal_inc_tax": 178.0,
    "total_inc_tax": 178.0,
    "items_total": 2,
    "payment_status": "captured",
    "payment_method": "Credit Card",
    "staff_notes": "",
    "customer_message": "",
    "currency_code": "USD",
    "billing_address": {
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "jane.doe@example.com",
        "city": "Austin",
        "country_iso2": "US",
    },
    "products": [
        {
            "id": 9,
            "order_id": 107,
            "product_id": 111,
            "variant_id": 301,
            "name": "Cat Eye Sunglasses",
            "sku": "SUN-CATEYE",
            "quantity": 2,
            "price_inc_tax": 89.0,
            "total_inc_tax": 178.0,
        }
    ],
}
SAMPLE_CUSTOMER: dict[str, Any] = {
    "id": 1,
    "email": "jane.doe@example.com",
    "first_name": "Jane",
    "last_name": "Doe",
    "company": "",
    "phone": "",
    "customer_group_id": 1,
    "date_created": "2026-11-20T09:00:00+00:00",
    "date_modified": "2026-11-27T09:00:00+00:00",
}
SAMPLE_SHIPMENT: dict[str, Any] = {
    "id": 3,
    "order_id": 107,
    "customer_id": 1,
    "tracking_number": "1Z999AA10123456784",
    "shipping_provider": "ups",
    "tracking_carrier": "ups",
    "shipping_method": "Ground",
    "date_created": "2026-11-28T09:00:00+00:00",
    "items": [{"order_product_id": 9, "product_id": 111, "quantity": 2}],
}
SAMPLE_WEBHOOK: dict[str, Any] = {
    "scope": "store/cart/abandoned",
    "store_id": "1025646",
    "data": {"type": "cart", "id": "09346904-4175-44fd-be53-f7e598531b6c"},
    "hash": "352e4afc6dd3fc85ea26bfdf3f91852604d57528",
    "created_at": 1795770000,
    "producer": "stores/sousdemo",
}


def sample_stock(previous: int, current: int, product: dict[str, Any]) -> dict[str, Any]:
    return {
        "product": product,
        "previous": previous,
        "current": current,
        "delta": current - previous,
        "warning_level": 5,
    }


SAMPLE_LOCATION: dict[str, Any] = {
    "id": 2,
    "code": "DOWNTOWN",
    "label": "Downtown shop",
    "enabled": True,
    "type_id": "PHYSICAL",
    "storefront_visibility": True,
}


def sample_location_stock(previous: int | None, current: int) -> dict[str, Any]:
    return {
        "location": SAMPLE_LOCATION,
        "product": SAMPLE_PRODUCT,
        "variant": {"id": 301, "sku": "SUN-CATEYE"},
        "previous": previous,
        "current": current,
        "delta": None if previous is None else current - previous,
        "warning_level": 2,
    }


def sample_variant_stock(previous: int, current: int) -> dict[str, Any]:
    return {
        **sample_stock(previous, current, SAMPLE_VARIANT_PRODUCT),
        "variant": SAMPLE_VARIANT,
        "warning_level": 2,
    }
