"""Locations and their webhooks in the simulator (inventory-location.mdx): location payloads
against the published callback schemas, stock events per location with the documented
``{variant_id, product_id, location_id}`` data, and items and locations answered per location
(the harness checks every answer against inventory.v3.yml and locations.v3.yml)."""

from __future__ import annotations

from typing import Any

import httpx
from openapi_schema_validator import OAS30Validator

from tests.conftest import SPECS

from .conftest import Harness
from .spec_check import load_yaml
from .test_webhooks import Sink, buy, hook

CALLBACKS = SPECS / "webhook-callbacks"
INVENTORY = "store/channel/*/inventory/product/"


async def _sent(harness: Harness) -> tuple[Sink, dict[str, Any]]:
    sink = Sink()
    harness.sim.deliveries.transport = httpx.MockTransport(sink)
    api, control = harness.api(), harness.control()
    for scope in (
        "store/inventory/location/created",
        "store/inventory/location/updated",
        *(INVENTORY + n for n in ("stock_changed", "low_stock_reached", "out_of_stock_reached",
                                  "settings_changed")),
    ):  # fmt: skip
        await hook(api, scope, "https://receiver.example/" + scope.rsplit("/", 1)[1])
    made = await control.post("/_sim/stores/sousdemo/locations", json={"code": "DT", "label": "DT"})
    assert made.status_code == 201, made.text
    return sink, made.json()


async def test_locations_and_their_stock_fire_the_documented_webhooks(harness: Harness) -> None:
    sink, location = await _sent(harness)
    api, control = harness.api(), harness.control()
    store = harness.sim.demo_store
    downtown = location["id"]
    adjust = {"items": [{"location_id": downtown, "product_id": 111, "quantity": 7}]}
    assert (await api.put("/v3/inventory/adjustments/absolute", json=adjust)).status_code == 200
    at_default = store.products[111].inventory_level - 7
    await buy(control, 111, at_default)  # an order takes location 1 to zero
    settings = {"product_id": 111, "warning_level": 3}
    await control.put(f"/_sim/stores/sousdemo/locations/{downtown}/settings", json=settings)
    await control.patch(f"/_sim/stores/sousdemo/locations/{downtown}", json={"enabled": False})
    await harness.sim.deliveries.drain()
    sent = [(p["scope"], p["data"]) for p in sink.payloads]
    base = store.base_variant(111)
    assert base is not None
    assert sent == [
        ("store/inventory/location/created", {"location_id": downtown}),
        (INVENTORY + "stock_changed", {"variant_id": base.id, "product_id": 111,
                                       "location_id": downtown}),
        (INVENTORY + "out_of_stock_reached", {"variant_id": base.id, "product_id": 111,
                                              "location_id": 1}),
        (INVENTORY + "settings_changed", {"variant_id": base.id, "product_id": 111,
                                          "location_id": downtown}),
        ("store/inventory/location/updated", {"location_id": downtown}),
    ]  # fmt: skip
    for payload in sink.payloads:
        scope = payload["scope"]
        if scope.startswith("store/inventory/location/"):
            path = CALLBACKS / (scope.replace("/", "_") + ".yml")
            schema = load_yaml(path)["properties"][scope]
            errors = list(OAS30Validator(schema).iter_errors(payload))
            assert not errors, f"{scope}: {errors[0].message}"
        assert set(payload) == {"scope", "store_id", "data", "hash", "created_at", "producer"}

    items = await api.get("/v3/inventory/items", params={"product_id:in": 111})
    [item] = items.json()["data"]
    levels = {row["location_id"]: row["available_to_sell"] for row in item["locations"]}
    assert levels == {1: 0, downtown: 7}
    warning = {row["location_id"]: row["settings"]["warning_level"] for row in item["locations"]}
    assert warning[downtown] == 3
    only = await api.get(
        "/v3/inventory/items", params={"product_id:in": 111, "location_id:in": downtown}
    )
    assert [r["location_id"] for r in only.json()["data"][0]["locations"]] == [downtown]
    listed = (await api.get("/v3/inventory/locations")).json()["data"]
    assert [(loc["id"], loc["code"], loc["enabled"]) for loc in listed] == [
        (1, "BC-LOCATION-1", True),
        (downtown, "DT", False),
    ]
    assert store.products[111].inventory_level == 7  # the total over the locations


async def test_an_unknown_location_is_refused(harness: Harness) -> None:
    api = harness.api()
    adjust = {"items": [{"location_id": 9, "product_id": 111, "quantity": 7}]}
    assert (await api.put("/v3/inventory/adjustments/absolute", json=adjust)).status_code == 422
    taken = await harness.control().post(
        "/_sim/stores/sousdemo/locations", json={"code": "BC-LOCATION-1", "label": "x"}
    )
    assert taken.status_code == 422
