"""Catalog v3 variants and Inventory v3, checked against the specs, with their webhooks."""

from __future__ import annotations


def scopes(sim) -> list[str]:
    return [e.scope for e in sim.demo_store.events]


async def test_product_variants_list_get(api):
    listed = await api.get("/v3/catalog/products/112/variants")
    assert listed.status_code == 200
    data = listed.json()["data"]
    assert [v["sku"] for v in data] == ["SUN-AVI-GLD", "SUN-AVI-SLV", "SUN-AVI-BLK"]
    assert data[0]["option_values"][0]["option_display_name"] == "Frame"
    assert data[0]["price"] == 119  # inherited from the product, shown resolved
    one = await api.get(f"/v3/catalog/products/112/variants/{data[1]['id']}")
    assert one.json()["data"]["inventory_level"] == 0
    assert (
        await api.get("/v3/catalog/products/111/variants/" + str(data[0]["id"]))
    ).status_code == 404
    assert (await api.get("/v3/catalog/products/9999/variants")).status_code == 404


async def test_create_update_delete_variant_fire_sku_events(api, sim):
    body = {
        "sku": "SUN-AVI-RSE",
        "price": 129,
        "inventory_level": 4,
        "option_values": [{"option_display_name": "Frame", "label": "Rose"}],
    }
    created = await api.post("/v3/catalog/products/112/variants", json=body)
    assert created.status_code == 200
    variant = created.json()["data"]
    vid, sku_id = variant["id"], variant["sku_id"]
    assert variant["option_values"][0]["option_id"] == (
        sim.demo_store.option_variants(112)[0].option_values[0].option_id
    )
    changed = await api.put(
        f"/v3/catalog/products/112/variants/{vid}",
        json={"inventory_level": 1, "purchasing_disabled": True},
    )
    assert changed.json()["data"]["purchasing_disabled"] is True
    assert (await api.delete(f"/v3/catalog/products/112/variants/{vid}")).status_code == 204
    assert scopes(sim) == [
        "store/sku/created",
        "store/sku/inventory/updated",
        "store/sku/updated",
        "store/sku/deleted",
    ]
    events = sim.demo_store.events
    assert events[1].data == {
        "type": "sku",
        "id": sku_id,
        "inventory": {"product_id": 112, "method": "absolute", "value": -3, "variant_id": vid},
    }
    assert events[0].data == {
        "type": "sku",
        "id": sku_id,
        "sku": {"product_id": 112, "variant_id": vid},
    }


async def test_duplicate_variant_sku_is_409(api):
    body = {
        "sku": "SUN-AVI-GLD",
        "option_values": [{"option_display_name": "Frame", "label": "Again"}],
    }
    assert (await api.post("/v3/catalog/products/112/variants", json=body)).status_code == 409


async def test_catalog_variants_filters_and_batch(api, sim):
    by_product = await api.get("/v3/catalog/variants", params={"product_id:in": "112,114"})
    assert len(by_product.json()["data"]) == 5
    by_sku = await api.get("/v3/catalog/variants", params={"sku": "HAT-BNE-NVY"})
    navy = by_sku.json()["data"][0]
    assert navy["purchasing_disabled"] is True
    batch = await api.put(
        "/v3/catalog/variants",
        json=[
            {"id": navy["id"], "purchasing_disabled": False},
            {"id": navy["id"] - 1, "inventory_level": 2},
        ],
    )
    assert batch.status_code == 200
    assert [v["inventory_level"] for v in batch.json()["data"]] == [6, 2]
    assert (
        await api.put("/v3/catalog/variants", json=[{"id": navy["id"]}] * 51)
    ).status_code == 413
    assert (await api.put("/v3/catalog/variants", json=[{"id": 1}])).status_code == 422


async def test_simple_product_base_variant_carries_product_stock(api, sim):
    base = (await api.get("/v3/catalog/products/111/variants")).json()["data"][0]
    assert base["option_values"] == []
    assert base["inventory_level"] == 11
    r = await api.put(
        f"/v3/catalog/products/111/variants/{base['id']}", json={"inventory_level": 3}
    )
    assert r.json()["data"]["inventory_level"] == 3
    assert sim.demo_store.products[111].inventory_level == 3
    assert scopes(sim) == ["store/product/inventory/updated", "store/product/updated"]


async def test_absolute_adjustment_by_sku_variant_and_product(api, sim):
    r = await api.put(
        "/v3/inventory/adjustments/absolute",
        json={
            "reason": "count",
            "items": [
                {"location_id": 1, "sku": "SUN-AVI-SLV", "quantity": 7},
                {"location_id": 1, "product_id": 111, "quantity": 0},
            ],
        },
    )
    assert r.status_code == 200
    assert r.json()["transaction_id"]
    store = sim.demo_store
    assert store.variant_by_sku("SUN-AVI-SLV").inventory_level == 7
    assert store.products[111].inventory_level == 0
    assert scopes(sim) == [
        "store/sku/inventory/updated",
        "store/product/inventory/updated",
        "store/product/updated",
    ]
    assert store.events[1].data["inventory"]["value"] == -11


async def test_relative_adjustment_and_insufficient_stock(api, sim):
    ok = await api.post(
        "/v3/inventory/adjustments/relative",
        json={
            "reason": "sold offline",
            "items": [{"location_id": 1, "product_id": 120, "quantity": -2}],
        },
    )
    assert ok.status_code == 200
    assert sim.demo_store.products[120].inventory_level == 1
    too_much = await api.post(
        "/v3/inventory/adjustments/relative",
        json={
            "items": [
                {"location_id": 1, "product_id": 121, "quantity": -1},
                {"location_id": 1, "product_id": 120, "quantity": -2},
            ]
        },
    )
    assert too_much.status_code == 422
    assert too_much.headers["content-type"].startswith("application/problem+json")
    assert sim.demo_store.products[121].inventory_level == 38  # all or nothing


async def test_adjustment_validation(api):
    cases = [
        {"items": []},
        {"items": [{"location_id": 2, "product_id": 111, "quantity": 1}]},
        {"items": [{"location_id": 1, "product_id": 111, "sku": "X", "quantity": 1}]},
        {"items": [{"location_id": 1, "sku": "NOPE", "quantity": 1}]},
        {"items": [{"location_id": 1, "product_id": 112, "quantity": 1}]},  # has variants
        {"items": [{"location_id": 1, "product_id": 111, "quantity": -1}]},
    ]
    for body in cases:
        r = await api.put("/v3/inventory/adjustments/absolute", json=body)
        assert r.status_code == 422, body


async def test_inventory_items(api):
    r = await api.get("/v3/inventory/items", params={"product_id:in": "112"})
    items = r.json()["data"]
    assert [i["identity"]["sku"] for i in items] == ["SUN-AVI-GLD", "SUN-AVI-SLV", "SUN-AVI-BLK"]
    silver = items[1]["locations"][0]
    assert (silver["location_id"], silver["available_to_sell"]) == (1, 0)
    assert silver["settings"]["is_in_stock"] is False
    by_sku = await api.get("/v3/inventory/items", params={"sku:in": "SUN-CATEYE"})
    assert by_sku.json()["data"][0]["locations"][0]["total_inventory_onhand"] == 11
    other_location = await api.get("/v3/inventory/items", params={"location_id:in": "2"})
    assert other_location.json()["data"] == []
    paged = await api.get("/v3/inventory/items", params={"limit": 2})
    assert paged.json()["meta"]["pagination"]["total"] == 17


async def test_untracked_simple_product_still_fires_product_inventory(api, sim):
    r = await api.put(
        "/v3/inventory/adjustments/absolute",
        json={"items": [{"location_id": 1, "product_id": 113, "quantity": 5}]},
    )
    assert r.status_code == 200
    # webhooks.md: for a product without variants the inventory event fires whatever the
    # tracking; store/product/updated fires only for tracked products.
    assert scopes(sim) == ["store/product/inventory/updated"]


async def test_variant_change_on_product_tracked_product_fires_no_sku_event(api, sim):
    await api.put("/v3/catalog/products/112", json={"inventory_tracking": "product"})
    sim.demo_store.events.clear()
    r = await api.put(
        "/v3/inventory/adjustments/absolute",
        json={"items": [{"location_id": 1, "sku": "SUN-AVI-GLD", "quantity": 1}]},
    )
    assert r.status_code == 200
    assert scopes(sim) == []
