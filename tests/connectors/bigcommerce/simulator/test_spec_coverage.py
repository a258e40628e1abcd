"""Every store route the simulator serves is an operation of BigCommerce's specs, and a tour calls
each of them once with a valid request (its answer checked against the spec like all others)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from connectors.bigcommerce.simulator import (
    routes_catalog,
    routes_customers,
    routes_hooks,
    routes_inventory,
    routes_orders,
    routes_scripts,
    routes_store,
    routes_variants,
)

from .spec_check import SpecLog, check_response, find_spec, load_yaml

MODULES = (routes_catalog, routes_variants, routes_inventory, routes_orders, routes_customers,
           routes_hooks, routes_store, routes_scripts)  # fmt: skip


def operations() -> set[tuple[str, str]]:
    """``(METHOD, /vN/spec-template)`` for every store route of the simulator."""
    out = set()
    for module in MODULES:
        for route in module.router.routes:
            match = re.match(r"^/stores/\{store_hash\}/(v2|v3)(/.*)$", route.path)
            assert match, route
            version, rest = match.groups()
            sample = re.sub(r"\{[^}]+\}", "1", rest)
            for method in route.methods:
                spec, template = find_spec(version, sample, method)
                document = load_yaml(spec.api_path)
                assert method.lower() in document["paths"][template], (method, template)
                out.add((method, f"/{version}{template}"))
    return out


def test_every_route_is_a_documented_operation():
    found = operations()
    assert len(found) == 64
    assert ("GET", "/v3/catalog/products/{product_id}/custom-fields/{custom_field_id}") in found


ADDRESS = {"first_name": "A", "last_name": "B", "zip": "78751", "email": "a@example.com"}
VARIANT = {"sku": "TOUR-1", "option_values": [{"option_display_name": "Frame", "label": "Tour"}]}
TOUR: list[tuple[str, str, object]] = [
    ("GET", "/v3/catalog/products", None),
    ("POST", "/v3/catalog/products", {"name": "Tour", "type": "physical", "weight": 1, "price": 2}),
    ("PUT", "/v3/catalog/products", [{"id": 111, "price": 88}]),
    ("GET", "/v3/catalog/products/111", None),
    ("PUT", "/v3/catalog/products/111", {"price": 87}),
    ("GET", "/v3/catalog/products/111/custom-fields", None),
    ("POST", "/v3/catalog/products/111/custom-fields", {"name": "Fit", "value": "Narrow"}),
    ("GET", "/v3/catalog/products/111/custom-fields/{field}", None),
    ("PUT", "/v3/catalog/products/111/custom-fields/{field}", {"value": "Wide"}),
    ("DELETE", "/v3/catalog/products/111/custom-fields/{field}", None),
    ("GET", "/v3/catalog/categories", None),
    ("GET", "/v3/catalog/categories/19", None),
    ("GET", "/v3/catalog/products/112/variants", None),
    ("POST", "/v3/catalog/products/112/variants", VARIANT),
    ("GET", "/v3/catalog/products/112/variants/{variant}", None),
    ("PUT", "/v3/catalog/products/112/variants/{variant}", {"inventory_level": 3}),
    ("DELETE", "/v3/catalog/products/112/variants/{variant}", None),
    ("GET", "/v3/catalog/variants", None),
    ("PUT", "/v3/catalog/variants", [{"id": 301, "inventory_level": 4}]),
    ("PUT", "/v3/inventory/adjustments/absolute",
     {"items": [{"location_id": 1, "variant_id": 301, "quantity": 9}]}),
    ("POST", "/v3/inventory/adjustments/relative",
     {"items": [{"location_id": 1, "sku": "SUN-CATEYE", "quantity": -1}]}),
    ("GET", "/v3/inventory/items", None),
    ("GET", "/v3/inventory/locations", None),
    ("GET", "/v2/orders", None),
    ("GET", "/v2/orders/count", None),
    ("POST", "/v2/orders", {"billing_address": ADDRESS,
                            "products": [{"product_id": 111, "quantity": 1}]}),
    ("GET", "/v2/orders/100", None),
    ("PUT", "/v2/orders/100", {"status_id": 11}),
    ("GET", "/v2/orders/100/products", None),
    ("GET", "/v2/orders/100/products/{line}", None),
    ("GET", "/v2/orders/100/shipments/count", None),
    ("GET", "/v2/orders/100/shipping_addresses", None),
    ("GET", "/v2/orders/100/shipping_addresses/{address}", None),
    ("POST", "/v2/orders/100/shipments", {"order_address_id": "{address}",
                                          "items": [{"order_product_id": "{line}",
                                                     "quantity": 1}]}),
    ("GET", "/v2/orders/100/shipments", None),
    ("GET", "/v2/orders/100/shipments/{shipment}", None),
    ("GET", "/v2/orders/100/messages", None),
    ("DELETE", "/v2/orders/100", None),
    ("GET", "/v2/order_statuses", None),
    ("GET", "/v2/order_statuses/0", None),
    ("GET", "/v3/customers", None),
    ("POST", "/v3/customers", [{"email": "t@example.com", "first_name": "T", "last_name": "U"}]),
    ("PUT", "/v3/customers", [{"id": 1, "phone": "555"}]),
    ("GET", "/v2/customers/1", None),
    ("PUT", "/v2/customers/1", {"customer_group_id": 2}),
    ("GET", "/v2/customer_groups", None),
    ("POST", "/v2/customer_groups", {"name": "Tour"}),
    ("GET", "/v2/customer_groups/count", None),
    ("GET", "/v2/customer_groups/1", None),
    ("POST", "/v3/hooks", {"scope": "store/order/*", "destination": "https://x.example/h"}),
    ("GET", "/v3/hooks", None),
    ("GET", "/v3/hooks/admin", None),
    ("GET", "/v3/hooks/{hook}", None),
    ("PUT", "/v3/hooks/{hook}", {"is_active": False}),
    ("DELETE", "/v3/hooks/{hook}", None),
    ("POST", "/v3/content/scripts", {"name": "Tour", "kind": "script_tag",
                                     "html": "<script>1</script>", "consent_category": "essential",
                                     "auto_uninstall": True}),
    ("GET", "/v3/content/scripts", None),
    ("GET", "/v3/content/scripts/{script}", None),
    ("PUT", "/v3/content/scripts/{script}", {"description": "toured", "enabled": False}),
    ("DELETE", "/v3/content/scripts/{script}", None),
    ("DELETE", "/v3/catalog/products/{product}", None),
    ("DELETE", "/v3/catalog/products", {"id:in": "122"}),
    ("GET", "/v2/store", None),
    ("GET", "/v2/time", None),
]  # fmt: skip


async def test_a_tour_calls_every_route_once_and_every_answer_matches_the_spec(harness):
    harness.spec_log = SpecLog()
    api = harness.api()
    ids: dict[str, object] = {}

    def fill(value: object) -> object:
        if isinstance(value, str):
            for key, found in ids.items():
                if value == "{" + key + "}":
                    return found
                value = value.replace("{" + key + "}", str(found))
            return value
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    for method, path, body in TOUR:
        url = str(fill(path))
        if method == "DELETE" and isinstance(body, dict):
            response = await api.request(method, url, params=body)
        else:
            response = await api.request(method, url, json=fill(body) if body else None)
        assert response.status_code < 300, (method, url, response.text)
        data: Any = response.json() if response.content else None
        data = data.get("data", data) if isinstance(data, dict) else data
        if method == "POST" and url.endswith("custom-fields"):
            ids["field"] = data["id"]
        elif method == "POST" and url.endswith("variants"):
            ids["variant"] = data["id"]
        elif method == "POST" and url == "/v3/content/scripts":
            ids["script"] = data["uuid"]
        elif method == "POST" and url == "/v3/hooks":
            ids["hook"] = data["id"]
        elif method == "POST" and url == "/v3/catalog/products":
            ids["product"] = data["id"]
        elif url == "/v2/orders/100/products":
            ids["line"] = data[0]["id"]
            ids["address"] = data[0]["order_address_id"]
        elif method == "POST" and url.endswith("/shipments"):
            ids["shipment"] = data["id"]
    toured = {(m, t) for m, t, _, _ in harness.spec_log.checked}
    assert toured == operations()
    assert all(documented for *_, documented in harness.spec_log.checked)


async def test_known_spec_conflict_an_empty_hook_list(harness):
    """webhooks.v3.yml gives ``GET /hooks`` ``data`` a ``minItems: 1``; a store without hooks
    still answers ``data: []`` as BigCommerce does, which that one schema line rejects."""
    raw = httpx.AsyncClient(
        transport=httpx.ASGITransport(harness.app),
        base_url="http://sim.test/stores/sousdemo",
        headers={"X-Auth-Token": harness.sim.demo_store.access_token},
    )
    async with raw:
        response = await raw.get("/v3/hooks")
    assert response.json()["data"] == []
    with pytest.raises(AssertionError, match="non-empty"):
        check_response(response)
