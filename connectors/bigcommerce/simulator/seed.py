"""The demo data: a dozen products (among them "Cat Eye Sunglasses"), some with variants, one
untracked, one out of stock, one low, two pre-order and one disabled; categories; customer groups;
customers; and orders in assorted statuses (one shipped, one cancelled, one refunded).

Seeding raises no webhooks (no hook exists yet) and leaves the store's event list empty.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .orders import create_order, create_shipment, refund, set_status
from .products import add_category, create_product
from .records import Customer, CustomerGroup, Product, Variant
from .state import Store

if TYPE_CHECKING:
    from .simulator import Simulator

CATEGORIES = ["Shop All", "Sunglasses", "Accessories", "Apparel", "Home", "Pre-order", "Sale"]


def _variants(option: str, rows: list[tuple[str, str, int]], **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "sku": sku,
            "inventory_level": level,
            "inventory_warning_level": 2,
            "option_values": [{"option_display_name": option, "label": label}],
            **extra,
        }
        for label, sku, level in rows
    ]


def _products(cat: dict[str, int], now_plus_30: Any) -> list[dict[str, Any]]:
    shades, acc, wear = cat["Sunglasses"], cat["Accessories"], cat["Apparel"]
    return [
        {
            "name": "Cat Eye Sunglasses",
            "sku": "SUN-CATEYE",
            "price": 89,
            "weight": 0.3,
            "inventory_tracking": "product",
            "inventory_level": 12,
            "inventory_warning_level": 5,
            "categories": [cat["Shop All"], shades],
            "is_featured": True,
            "custom_fields": [
                {"name": "Lens", "value": "Polarized"},
                {"name": "UV protection", "value": "UV400"},
            ],
        },
        {
            "name": "Aviator Sunglasses",
            "sku": "SUN-AVIATOR",
            "price": 119,
            "weight": 0.3,
            "inventory_tracking": "variant",
            "categories": [cat["Shop All"], shades],
            "variants": _variants(
                "Frame",
                [
                    ("Gold", "SUN-AVI-GLD", 5),
                    ("Silver", "SUN-AVI-SLV", 0),
                    ("Black", "SUN-AVI-BLK", 8),
                ],
            ),
        },
        {
            "name": "Classic Canvas Tote",
            "sku": "BAG-TOTE",
            "price": 24,
            "weight": 0.5,
            "inventory_tracking": "none",
            "categories": [cat["Shop All"], acc],
        },
        {
            "name": "Merino Wool Beanie",
            "sku": "HAT-BEANIE",
            "price": 35,
            "weight": 0.2,
            "inventory_tracking": "variant",
            "categories": [cat["Shop All"], wear],
            "variants": _variants(
                "Color", [("Charcoal", "HAT-BNE-CHR", 15), ("Navy", "HAT-BNE-NVY", 6)]
            ),
        },
        {
            "name": "Linen Summer Shirt",
            "sku": "SHIRT-LINEN",
            "price": 68,
            "weight": 0.4,
            "inventory_tracking": "variant",
            "categories": [cat["Shop All"], wear],
            "variants": _variants(
                "Size", [("S", "SHIRT-LIN-S", 3), ("M", "SHIRT-LIN-M", 10), ("L", "SHIRT-LIN-L", 0)]
            ),
        },
        {
            "name": "Leather Card Holder",
            "sku": "ACC-CARD",
            "price": 45,
            "weight": 0.1,
            "inventory_tracking": "product",
            "inventory_level": 0,
            "inventory_warning_level": 3,
            "categories": [cat["Shop All"], acc],
        },
        {
            "name": "Limited Edition Print",
            "sku": "ART-PRINT-LE",
            "price": 150,
            "weight": 0.8,
            "inventory_tracking": "product",
            "inventory_level": 20,
            "availability": "preorder",
            "preorder_release_date": now_plus_30,
            "is_preorder_only": True,
            "preorder_message": "Ships from %%DATE%%",
            "categories": [cat["Pre-order"]],
        },
        {
            "name": "Retro Film Camera",
            "sku": "CAM-RETRO",
            "price": 249,
            "weight": 1.1,
            "inventory_tracking": "none",
            "availability": "preorder",
            "availability_description": "Ships in 6-8 weeks",
            "categories": [cat["Pre-order"]],
        },
        {
            "name": "Ceramic Pour-Over Set",
            "sku": "HOME-POUR",
            "price": 58,
            "weight": 1.5,
            "inventory_tracking": "product",
            "inventory_level": 7,
            "availability": "disabled",
            "categories": [cat["Home"]],
        },
        {
            "name": "Bamboo Sunglasses Case",
            "sku": "ACC-CASE",
            "price": 19,
            "weight": 0.15,
            "inventory_tracking": "product",
            "inventory_level": 3,
            "inventory_warning_level": 5,
            "categories": [shades, acc],
        },
        {
            "name": "Silk Scarf",
            "sku": "ACC-SCARF",
            "price": 79,
            "sale_price": 59,
            "weight": 0.1,
            "inventory_tracking": "product",
            "inventory_level": 40,
            "inventory_warning_level": 5,
            "categories": [acc, cat["Sale"]],
        },
        {
            "name": "Gift Card",
            "sku": "GIFT-50",
            "price": 50,
            "weight": 0,
            "type": "digital",
            "inventory_tracking": "none",
            "categories": [cat["Shop All"]],
        },
    ]


def seed_catalog(store: Store) -> None:
    now = store.now()
    cat = {name: add_category(store, name).id for name in CATEGORIES}
    for body in _products(cat, now + timedelta(days=30)):
        create_product(store, {"type": "physical", **body})
    beanie = next(p for p in store.products.values() if p.name == "Merino Wool Beanie")
    navy = store.option_variants(beanie.id)[1]
    navy.purchasing_disabled = True
    navy.purchasing_disabled_message = "Navy is sold out for the season"
    for name, default in (("Retail", True), ("Wholesale", False), ("VIP", False)):
        group = CustomerGroup(
            id=store.next_id("customer_group"),
            name=name,
            is_default=default,
            date_created=now,
            date_modified=now,
        )
        store.customer_groups[group.id] = group
    people = [
        ("Jane", "Doe", 1),
        ("John", "Smith", 2),
        ("Ava", "Chen", 3),
        ("Liam", "Obi", 1),
        ("Sofia", "Rossi", 0),
    ]
    for first, last, group_id in people:
        customer = Customer(
            id=store.next_id("customer"),
            first_name=first,
            last_name=last,
            email=f"{first.lower()}.{last.lower()}@example.com",
            customer_group_id=group_id,
            date_created=now,
            date_modified=now,
        )
        store.customers[customer.id] = customer
    _orders(store)
    store.events.clear()


def _orders(store: Store) -> None:
    def product(name: str) -> Product:
        return next(p for p in store.products.values() if p.name == name)

    cat_eye, scarf, tote = (
        product("Cat Eye Sunglasses"),
        product("Silk Scarf"),
        product("Classic Canvas Tote"),
    )
    shirt = product("Linen Summer Shirt")
    shirt_m = store.option_variants(shirt.id)[1]
    plan: list[tuple[int, list[tuple[Product, Variant | None, int]], int, str | None]] = [
        (1, [(cat_eye, None, 1)], 11, None),
        (2, [(scarf, None, 2), (tote, None, 1)], 2, "ship"),
        (3, [(shirt, shirt_m, 1)], 10, None),
        (4, [(tote, None, 3)], 1, None),
        (5, [(scarf, None, 1)], 5, None),
        (1, [(cat_eye, None, 1)], 4, "refund"),
        (0, [(tote, None, 1)], 7, None),
    ]
    now = store.now()
    for age, (customer_id, lines, status_id, then) in enumerate(reversed(plan)):
        first_status = 11 if then else status_id
        order = create_order(
            store,
            lines,
            customer_id=customer_id,
            status_id=first_status,
            extra={"order_source": "www", "payment_method": "Credit Card"},
        )
        if then == "ship":
            create_shipment(
                store,
                order,
                {
                    "tracking_number": "1Z999AA10123456784",
                    "shipping_provider": "ups",
                    "order_address_id": order.order_address_id,
                    "items": [
                        {"order_product_id": line.id, "quantity": line.quantity}
                        for line in order.lines
                    ],
                },
            )
        elif then == "refund":
            refund(store, order)
        elif status_id != first_status:  # pragma: no cover - every plan row sets its own
            set_status(store, order, status_id)
        order.date_created = order.date_modified = now - timedelta(days=len(plan) - age)


def seed_demo_store(sim: Simulator) -> Store:
    config = sim.config
    store = sim.state.add_store(
        store_hash=config.demo_store_hash,
        name="Sous Demo Store",
        access_token=config.demo_access_token,
        client_id=config.demo_client_id,
        client_secret=config.demo_client_secret,
    )
    seed_catalog(store)
    return store
