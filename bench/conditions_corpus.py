"""A corpus of realistic e-commerce JsonLogic rules, each with a hand-written Python equivalent.

Used by ``bench/bench_conditions.py`` (speed against panzi-json-logic and the hand-written
functions) and by the condition tests (compiled results equal the interpreter's on generated
data). Every rule reads the shape of :data:`DATA`: an order with lines, its customer, a product
with variants, stock by location and open backorders. Together the rules use every operator of
jsonlogic.com except ``log`` (panzi-json-logic prints from it).

The hand-written functions are what one would write for this data without JsonLogic: direct
subscripts, ``.get`` where the rule gives a default, builtins such as ``any`` and ``sum``.
They agree with the rule on :data:`DATA` (the benchmark checks this before timing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LINES: dict[str, Any] = {"var": "order.lines"}
TOTAL: dict[str, Any] = {"var": "order.total_inc_tax"}
GROUP: dict[str, Any] = {"var": "customer.group"}

DATA: dict[str, Any] = {
    "order": {
        "id": 1250,
        "status": "Awaiting Fulfillment",
        "channel_id": 1,
        "currency_code": "USD",
        "payment_method": "Credit Card",
        "coupon_code": "SALE-SPRING",
        "customer_message": "Please leave at the back door",
        "subtotal_ex_tax": 212.5,
        "total_inc_tax": 241.75,
        "shipping_cost_inc_tax": 12.0,
        "billing_address": {
            "country_iso2": "US",
            "state": "California",
            "zip": "94103",
            "email": "ann@example.com",
            "phone": "",
        },
        "shipping_address": {"country_iso2": "US", "state": "Nevada", "zip": "89501"},
        "lines": [
            {
                "sku": "TEE-RED-M",
                "product_id": 11,
                "quantity": 2,
                "price_inc_tax": 25.0,
                "stock_level": 40,
                "is_digital": False,
                "categories": ["apparel", "summer"],
                "tags": ["cotton"],
            },
            {
                "sku": "HAT-BLK",
                "product_id": 12,
                "quantity": 1,
                "price_inc_tax": 19.5,
                "stock_level": 0,
                "is_digital": False,
                "categories": ["apparel", "clearance"],
                "discount": 4.5,
            },
            {
                "sku": "MUG-WHT",
                "product_id": 13,
                "quantity": 3,
                "price_inc_tax": 12.0,
                "stock_level": 7,
                "is_digital": False,
                "categories": ["kitchen"],
                "tags": ["fragile"],
            },
            {
                "sku": "BAG-TOTE",
                "product_id": 14,
                "quantity": 4,
                "price_inc_tax": 30.25,
                "stock_level": 2,
                "is_digital": False,
                "categories": ["accessories"],
                "discount": 6.0,
            },
        ],
    },
    "customer": {
        "id": 77,
        "email": "ann@example.com",
        "group": "VIP",
        "orders_count": 12,
        "total_spent": 1840.5,
        "tags": ["newsletter", "repeat"],
        "accepts_marketing": True,
        "company": {"tags": ["vip", "net30"]},
    },
    "product": {
        "id": 11,
        "sku": "TEE-RED-M",
        "brand": "Northwind",
        "price": 25.0,
        "cost_price": 11.0,
        "inventory_level": 3,
        "inventory_warning_level": 5,
        "inventory_tracking": "variant",
        "reserved": 1,
        "tags": ["sale", "summer"],
        "variants": [
            {"sku": "TEE-RED-S", "inventory_level": 4, "option_values": [{"label": "S"}]},
            {"sku": "TEE-RED-M", "inventory_level": 3, "option_values": [{"label": "M"}]},
            {"sku": "TEE-RED-XL", "inventory_level": 0, "option_values": [{"label": "XL"}]},
        ],
    },
    "inventory": {
        "locations": [
            {"code": "SFO", "available": 12, "reserved": 2},
            {"code": "RNO", "available": 5},
            {"code": "NYC", "available": 3, "reserved": 1},
        ]
    },
    "backorders": [
        {"sku": "HAT-BLK", "quantity": 6, "eta_days": 21},
        {"sku": "BAG-TOTE", "quantity": 2, "eta_days": 5},
    ],
}
"""The event data every rule is timed against."""


@dataclass(frozen=True)
class Case:
    """One rule of the corpus and the same condition written directly in Python."""

    name: str
    rule: Any
    hand: Callable[[Any], Any]


def _var(path: str, default: Any = None) -> dict[str, Any]:
    return {"var": [path, default]} if default is not None else {"var": path}


def _sum(body: Any, items: Any = LINES) -> dict[str, Any]:
    return {"reduce": [items, {"+": [{"var": "accumulator"}, body]}, 0]}


def _h_sold_out_on_sale(d: Any) -> Any:
    product = d["product"]
    return (
        product["inventory_level"] <= 0
        and product["inventory_tracking"] == "product"
        and "sale" in product["tags"]
    )


def _h_high_value(d: Any) -> Any:
    o = d["order"]
    return o["total_inc_tax"] >= 200 and o["currency_code"] == "USD"


def _h_line_over_stock(d: Any) -> Any:
    return any(line["quantity"] > line["stock_level"] for line in d["order"]["lines"])


def _h_all_physical(d: Any) -> Any:
    return all(not line["is_digital"] for line in d["order"]["lines"])


def _h_no_fragile(d: Any) -> Any:
    return not any("fragile" in line.get("tags", []) for line in d["order"]["lines"])


def _h_bulk_units(d: Any) -> Any:
    return sum(line["quantity"] for line in d["order"]["lines"]) >= 10


def _h_lines_value(d: Any) -> Any:
    lines = d["order"]["lines"]
    return sum(line["price_inc_tax"] * line["quantity"] for line in lines) > 200


def _h_gift_card(d: Any) -> Any:
    return "GIFT-CARD" in [line["sku"] for line in d["order"]["lines"]]


def _h_two_apparel(d: Any) -> Any:
    lines = d["order"]["lines"]
    return len([line for line in lines if "apparel" in line["categories"]]) >= 2


def _h_vip_tags(d: Any) -> Any:
    customer = d["customer"]
    return "vip" in customer["tags"] + customer["company"]["tags"]


def _h_sale_coupon(d: Any) -> Any:
    return d["order"]["coupon_code"][:4] == "SALE"


def _h_example_email(d: Any) -> Any:
    return "@example.com" in d["customer"]["email"]


def _h_ships_north_america(d: Any) -> Any:
    return d["order"]["shipping_address"]["country_iso2"] in ("US", "CA", "MX")


def _h_address_complete(d: Any) -> Any:
    address = d["order"]["billing_address"]
    return all(address.get(key) not in (None, "") for key in ("zip", "email", "state"))


def _h_reachable(d: Any) -> Any:
    customer, billing = d["customer"], d["order"]["billing_address"]
    contacts = (customer.get("phone"), customer.get("email"), billing.get("phone"))
    return any(value not in (None, "") for value in contacts)


def _h_shipping_tier(d: Any) -> Any:
    total = d["order"]["total_inc_tax"]
    if total >= 500:
        return "free"
    if total >= 200:
        return "flat"
    if total < 20:
        return "small"
    return "standard"


def _h_low_stock(d: Any) -> Any:
    product = d["product"]
    return 0 < product["inventory_level"] < product["inventory_warning_level"]


def _h_mid_order(d: Any) -> Any:
    return 50 <= d["order"]["subtotal_ex_tax"] <= 250


def _h_region(d: Any) -> Any:
    address = d["order"]["billing_address"]
    return address["country_iso2"] + "-" + address["state"] == "US-California"


def _h_margin(d: Any) -> Any:
    product = d["product"]
    return (product["price"] - product["cost_price"]) / product["price"] >= 0.3


def _h_sampled(d: Any) -> Any:
    return d["order"]["id"] % 10 == 0


def _h_reorder(d: Any) -> Any:
    product = d["product"]
    free = max(product["inventory_level"] - product["reserved"], 0)
    return free < product.get("reorder_point", 5)


def _h_has_message(d: Any) -> Any:
    return bool(d["order"]["customer_message"])


def _h_web_card(d: Any) -> Any:
    o = d["order"]
    return o["channel_id"] == 1 and o["payment_method"] != "Manual"


def _h_open_order(d: Any) -> Any:
    return d["order"]["status"] not in ("Cancelled", "Refunded")


def _h_loyal(d: Any) -> Any:
    c = d["customer"]
    return c["group"] == "VIP" or c["orders_count"] >= 10 or c["total_spent"] > 1000


def _h_slow_backorder(d: Any) -> Any:
    return any(b["eta_days"] > 14 and b["quantity"] >= 5 for b in d["backorders"])


def _h_locations_stocked(d: Any) -> Any:
    locations = d["inventory"]["locations"]
    return all(loc["available"] - loc.get("reserved", 0) >= 1 for loc in locations)


def _h_xl_sold_out(d: Any) -> Any:
    return any(
        v["inventory_level"] <= 0 and any(o["label"] == "XL" for o in v["option_values"])
        for v in d["product"]["variants"]
    )


def _h_pricey_line(d: Any) -> Any:
    return max(line["price_inc_tax"] for line in d["order"]["lines"]) > 28


def _h_clearance(d: Any) -> Any:
    return any("clearance" in line["categories"] for line in d["order"]["lines"])


def _h_store_credit(d: Any) -> Any:
    return d["customer"].get("store_credit", 0) > d["order"]["total_inc_tax"]


def _h_discount_value(d: Any) -> Any:
    rate = {"Wholesale": 0.2, "VIP": 0.1}.get(d["customer"]["group"], 0)
    return d["order"]["subtotal_ex_tax"] * rate


def _h_known_prefix(d: Any) -> Any:
    return d["product"]["sku"][:3] in ("TEE", "HAT", "MUG")


def _h_unsubscribed(d: Any) -> Any:
    return not d["customer"]["accepts_marketing"]


def _h_ship_elsewhere(d: Any) -> Any:
    o = d["order"]
    different = o["billing_address"]["country_iso2"] != o["shipping_address"]["country_iso2"]
    return different and o["total_inc_tax"] > 300


def _h_discounts(d: Any) -> Any:
    return sum(line.get("discount", 0) for line in d["order"]["lines"]) > 10


def _h_terms(d: Any) -> Any:
    return "net30" if "net30" in d["customer"]["company"]["tags"] else "card"


def _h_out_skus(d: Any) -> Any:
    lines = d["order"]["lines"]
    return [line["sku"] for line in lines if line["stock_level"] < line["quantity"]]


def _h_units_after_tax(d: Any) -> Any:
    o = d["order"]
    return o["total_inc_tax"] - o["shipping_cost_inc_tax"] * 1.2 + 0.5 > 100


def _h_min_location(d: Any) -> Any:
    locations = d["inventory"]["locations"]
    return min(locations[0]["available"], locations[1]["available"], locations[2]["available"]) < 4


def _h_label(d: Any) -> Any:
    p = d["product"]
    return p["brand"] + ": " + p["sku"][-1:] + " (" + str(p["inventory_level"]) + " left)"


CORPUS: tuple[Case, ...] = (
    Case(
        "sold_out_on_sale",
        {
            "and": [
                {"<=": [_var("product.inventory_level"), 0]},
                {"==": [_var("product.inventory_tracking"), "product"]},
                {"in": ["sale", _var("product.tags")]},
            ]
        },
        _h_sold_out_on_sale,
    ),
    Case(
        "high_value_usd",
        {"and": [{">=": [TOTAL, 200]}, {"==": [_var("order.currency_code"), "USD"]}]},
        _h_high_value,
    ),
    Case(
        "some_line_over_stock",
        {"some": [LINES, {">": [_var("quantity"), _var("stock_level")]}]},
        _h_line_over_stock,
    ),
    Case("all_lines_physical", {"all": [LINES, {"!": _var("is_digital")}]}, _h_all_physical),
    Case(
        "no_fragile_line",
        {"none": [LINES, {"in": ["fragile", {"var": ["tags", []]}]}]},
        _h_no_fragile,
    ),
    Case("bulk_units", {">=": [_sum(_var("current.quantity")), 10]}, _h_bulk_units),
    Case(
        "lines_value",
        {">": [_sum({"*": [_var("current.price_inc_tax"), _var("current.quantity")]}), 200]},
        _h_lines_value,
    ),
    Case(
        "gift_card_in_order",
        {"in": ["GIFT-CARD", {"map": [LINES, _var("sku")]}]},
        _h_gift_card,
    ),
    Case(
        "two_apparel_lines",
        {">=": [_sum(1, {"filter": [LINES, {"in": ["apparel", _var("categories")]}]}), 2]},
        _h_two_apparel,
    ),
    Case(
        "vip_tag_anywhere",
        {"in": ["vip", {"merge": [_var("customer.tags"), _var("customer.company.tags")]}]},
        _h_vip_tags,
    ),
    Case(
        "sale_coupon",
        {"==": [{"substr": [_var("order.coupon_code"), 0, 4]}, "SALE"]},
        _h_sale_coupon,
    ),
    Case("example_email", {"in": ["@example.com", _var("customer.email")]}, _h_example_email),
    Case(
        "ships_north_america",
        {"in": [_var("order.shipping_address.country_iso2"), ["US", "CA", "MX"]]},
        _h_ships_north_america,
    ),
    Case(
        "billing_address_complete",
        {
            "!": {
                "missing": [
                    "order.billing_address.zip",
                    "order.billing_address.email",
                    "order.billing_address.state",
                ]
            }
        },
        _h_address_complete,
    ),
    Case(
        "reachable_customer",
        {
            "!": {
                "missing_some": [
                    1,
                    ["customer.phone", "customer.email", "order.billing_address.phone"],
                ]
            }
        },
        _h_reachable,
    ),
    Case(
        "shipping_tier",
        {
            "if": [
                {">=": [TOTAL, 500]},
                "free",
                {">=": [TOTAL, 200]},
                "flat",
                {"<": [TOTAL, 20]},
                "small",
                "standard",
            ]
        },
        _h_shipping_tier,
    ),
    Case(
        "low_but_in_stock",
        {"<": [0, _var("product.inventory_level"), _var("product.inventory_warning_level")]},
        _h_low_stock,
    ),
    Case("mid_sized_order", {"<=": [50, _var("order.subtotal_ex_tax"), 250]}, _h_mid_order),
    Case(
        "region_code",
        {
            "==": [
                {
                    "cat": [
                        _var("order.billing_address.country_iso2"),
                        "-",
                        _var("order.billing_address.state"),
                    ]
                },
                "US-California",
            ]
        },
        _h_region,
    ),
    Case(
        "healthy_margin",
        {
            ">=": [
                {
                    "/": [
                        {"-": [_var("product.price"), _var("product.cost_price")]},
                        _var("product.price"),
                    ]
                },
                0.3,
            ]
        },
        _h_margin,
    ),
    Case("sampled_for_qa", {"==": [{"%": [_var("order.id"), 10]}, 0]}, _h_sampled),
    Case(
        "reorder_needed",
        {
            "<": [
                {"max": [{"-": [_var("product.inventory_level"), _var("product.reserved")]}, 0]},
                _var("product.reorder_point", 5),
            ]
        },
        _h_reorder,
    ),
    Case("has_customer_message", {"!!": _var("order.customer_message")}, _h_has_message),
    Case(
        "web_order_not_manual",
        {
            "and": [
                {"===": [_var("order.channel_id"), 1]},
                {"!==": [_var("order.payment_method"), "Manual"]},
            ]
        },
        _h_web_card,
    ),
    Case(
        "open_order",
        {
            "and": [
                {"!=": [_var("order.status"), "Cancelled"]},
                {"!=": [_var("order.status"), "Refunded"]},
            ]
        },
        _h_open_order,
    ),
    Case(
        "loyal_customer",
        {
            "or": [
                {"==": [GROUP, "VIP"]},
                {">=": [_var("customer.orders_count"), 10]},
                {">": [_var("customer.total_spent"), 1000]},
            ]
        },
        _h_loyal,
    ),
    Case(
        "slow_large_backorder",
        {
            "some": [
                _var("backorders"),
                {"and": [{">": [_var("eta_days"), 14]}, {">=": [_var("quantity"), 5]}]},
            ]
        },
        _h_slow_backorder,
    ),
    Case(
        "every_location_stocked",
        {
            "all": [
                _var("inventory.locations"),
                {">=": [{"-": [_var("available"), _var("reserved", 0)]}, 1]},
            ]
        },
        _h_locations_stocked,
    ),
    Case(
        "xl_variant_sold_out",
        {
            "some": [
                _var("product.variants"),
                {
                    "and": [
                        {"<=": [_var("inventory_level"), 0]},
                        {"some": [_var("option_values"), {"==": [_var("label"), "XL"]}]},
                    ]
                },
            ]
        },
        _h_xl_sold_out,
    ),
    Case(
        "pricey_line",
        {
            ">": [
                {
                    "reduce": [
                        {"map": [LINES, _var("price_inc_tax")]},
                        {"max": [_var("accumulator"), _var("current")]},
                        0,
                    ]
                },
                28,
            ]
        },
        _h_pricey_line,
    ),
    Case(
        "clearance_in_order",
        {
            "in": [
                "clearance",
                {
                    "reduce": [
                        LINES,
                        {"merge": [_var("accumulator"), _var("current.categories")]},
                        [],
                    ]
                },
            ]
        },
        _h_clearance,
    ),
    Case("store_credit_covers", {">": [_var("customer.store_credit", 0), TOTAL]}, _h_store_credit),
    Case(
        "group_discount",
        {
            "*": [
                _var("order.subtotal_ex_tax"),
                {"if": [{"==": [GROUP, "Wholesale"]}, 0.2, {"==": [GROUP, "VIP"]}, 0.1, 0]},
            ]
        },
        _h_discount_value,
    ),
    Case(
        "known_sku_prefix",
        {"in": [{"substr": [_var("product.sku"), 0, 3]}, ["TEE", "HAT", "MUG"]]},
        _h_known_prefix,
    ),
    Case("unsubscribed", {"!": _var("customer.accepts_marketing")}, _h_unsubscribed),
    Case(
        "ships_abroad_large",
        {
            "and": [
                {
                    "!=": [
                        _var("order.billing_address.country_iso2"),
                        _var("order.shipping_address.country_iso2"),
                    ]
                },
                {">": [TOTAL, 300]},
            ]
        },
        _h_ship_elsewhere,
    ),
    Case("line_discounts", {">": [_sum(_var("current.discount", 0)), 10]}, _h_discounts),
    Case(
        "payment_terms",
        {"?:": [{"in": ["net30", _var("customer.company.tags")]}, "net30", "card"]},
        _h_terms,
    ),
    Case(
        "short_skus",
        {"map": [{"filter": [LINES, {"<": [_var("stock_level"), _var("quantity")]}]}, _var("sku")]},
        _h_out_skus,
    ),
    Case(
        "goods_value",
        {
            ">": [
                {"+": [{"-": [TOTAL, {"*": [_var("order.shipping_cost_inc_tax"), 1.2]}]}, 0.5]},
                100,
            ]
        },
        _h_units_after_tax,
    ),
    Case(
        "thinnest_location",
        {
            "<": [
                {
                    "min": [
                        _var("inventory.locations.0.available"),
                        _var("inventory.locations.1.available"),
                        _var("inventory.locations.2.available"),
                    ]
                },
                4,
            ]
        },
        _h_min_location,
    ),
    Case(
        "stock_label",
        {
            "cat": [
                _var("product.brand"),
                ": ",
                {"substr": [_var("product.sku"), -1]},
                " (",
                _var("product.inventory_level"),
                " left)",
            ]
        },
        _h_label,
    ),
)
"""The rules, in the order the benchmark prints them."""
