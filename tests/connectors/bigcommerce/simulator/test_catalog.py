"""Catalog v3 products, custom fields and categories, checked against the specs."""

from __future__ import annotations

from typing import Any

import pytest

from engine.clock import ManualClock


def names(body: dict[str, Any]) -> list[str]:
    return [p["name"] for p in body["data"]]


async def test_list_has_the_demo_catalogue_with_pagination_meta(api):
    r = await api.get("/v3/catalog/products", params={"limit": 5, "page": 2})
    assert r.status_code == 200
    body = r.json()
    assert len(body["data"]) == 5
    assert body["meta"]["pagination"] == {
        "total": 12,
        "count": 5,
        "per_page": 5,
        "current_page": 2,
        "total_pages": 3,
        "links": {
            "previous": "?page=1&limit=5",
            "current": "?page=2&limit=5",
            "next": "?page=3&limit=5",
        },
    }
    everything = (await api.get("/v3/catalog/products")).json()
    assert "Cat Eye Sunglasses" in names(everything)
    assert everything["meta"]["pagination"]["per_page"] == 50
    assert "previous" not in everything["meta"]["pagination"]["links"]


async def test_limit_above_250_is_413(api):
    r = await api.get("/v3/catalog/products", params={"limit": 251})
    assert r.status_code == 413
    assert r.json()["status"] == 413
    assert (await api.get("/v3/catalog/products", params={"limit": 250})).status_code == 200


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"sku": "SUN-CATEYE"}, ["Cat Eye Sunglasses"]),
        ({"availability": "preorder"}, ["Limited Edition Print", "Retro Film Camera"]),
        ({"availability": "disabled"}, ["Ceramic Pour-Over Set"]),
        ({"out_of_stock": 1, "sku:in": "ACC-CARD,SUN-CATEYE"}, ["Leather Card Holder"]),
        ({"inventory_low": 1}, ["Leather Card Holder", "Bamboo Sunglasses Case"]),
        (
            {"inventory_level:min": 20},
            ["Merino Wool Beanie", "Limited Edition Print", "Silk Scarf"],
        ),
        ({"inventory_level:greater": 20}, ["Merino Wool Beanie", "Silk Scarf"]),
        (
            {"inventory_level:less": 1},
            ["Classic Canvas Tote", "Leather Card Holder", "Retro Film Camera", "Gift Card"],
        ),
        ({"inventory_level:max": 0, "keyword": "holder"}, ["Leather Card Holder"]),
        ({"inventory_level": 3}, ["Bamboo Sunglasses Case"]),
        ({"id:in": "113,111"}, ["Cat Eye Sunglasses", "Classic Canvas Tote"]),
        ({"name": "Silk Scarf"}, ["Silk Scarf"]),
    ],
)
async def test_filters(api, params, expected):
    r = await api.get("/v3/catalog/products", params=params)
    assert names(r.json()) == expected


async def test_sort_and_direction(api):
    r = await api.get("/v3/catalog/products", params={"sort": "price", "direction": "desc"})
    prices = [p["price"] for p in r.json()["data"]]
    assert prices == sorted(prices, reverse=True)
    assert (await api.get("/v3/catalog/products", params={"sort": "colour"})).status_code == 422


async def test_date_modified_filter_follows_the_clock(api, clock: ManualClock):
    seeded = clock.now().isoformat()
    clock.advance(60)
    since = clock.now().isoformat()
    r = await api.put("/v3/catalog/products/113", json={"warranty": "Lifetime"})
    assert r.status_code == 200
    changed = await api.get("/v3/catalog/products", params={"date_modified:min": since})
    assert names(changed.json()) == ["Classic Canvas Tote"]
    older = await api.get("/v3/catalog/products", params={"date_modified:max": seeded})
    assert "Classic Canvas Tote" not in names(older.json())
    assert len(older.json()["data"]) == 11


async def test_include_variants_and_custom_fields(api):
    plain = (await api.get("/v3/catalog/products/111")).json()["data"]
    assert "custom_fields" not in plain
    assert "variants" not in plain
    r = await api.get("/v3/catalog/products/111", params={"include": "variants,custom_fields"})
    data = r.json()["data"]
    assert [cf["name"] for cf in data["custom_fields"]] == ["Lens", "UV protection"]
    assert [v["sku"] for v in data["variants"]] == ["SUN-CATEYE"]
    assert data["base_variant_id"] == data["variants"][0]["id"]
    aviator = (await api.get("/v3/catalog/products/112", params={"include": "variants"})).json()
    assert [v["inventory_level"] for v in aviator["data"]["variants"]] == [5, 0, 8]
    assert aviator["data"]["inventory_level"] == 13  # tracked by variant: the sum
    assert "base_variant_id" not in aviator["data"]


async def test_include_fields_keeps_only_those(api):
    r = await api.get("/v3/catalog/products/111", params={"include_fields": "name,price"})
    assert r.json()["data"] == {"id": 111, "name": "Cat Eye Sunglasses", "price": 89}


async def test_create_get_update_delete(api, sim):
    body = {
        "name": "Round Sunglasses",
        "type": "physical",
        "weight": 0.2,
        "price": 70,
        "sku": "SUN-ROUND",
        "inventory_tracking": "product",
        "inventory_level": 9,
        "categories": [19],
        "custom_fields": [{"name": "Lens", "value": "Gradient"}],
    }
    created = await api.post("/v3/catalog/products", json=body)
    assert created.status_code == 200
    product = created.json()["data"]
    assert product["inventory_level"] == 9
    assert product["availability"] == "available"
    pid = product["id"]
    got = await api.get(f"/v3/catalog/products/{pid}", params={"include": "custom_fields"})
    assert got.json()["data"]["custom_fields"][0]["value"] == "Gradient"

    updated = await api.put(
        f"/v3/catalog/products/{pid}",
        json={"availability": "preorder", "preorder_message": "Soon", "inventory_level": 4},
    )
    assert updated.status_code == 200
    data = updated.json()["data"]
    assert (data["availability"], data["preorder_message"], data["inventory_level"]) == (
        "preorder",
        "Soon",
        4,
    )
    store = sim.demo_store
    scopes = [e.scope for e in store.events]
    assert scopes == [
        "store/product/created",
        "store/product/inventory/updated",
        "store/product/updated",
    ]
    assert store.events[1].data["inventory"] == {
        "product_id": pid,
        "method": "absolute",
        "value": -5,
    }

    assert (await api.delete(f"/v3/catalog/products/{pid}")).status_code == 204
    assert (await api.get(f"/v3/catalog/products/{pid}")).status_code == 404
    assert store.events[-1].scope == "store/product/deleted"


async def test_create_validation_and_conflicts(api):
    missing = await api.post("/v3/catalog/products", json={"name": "No price"})
    assert missing.status_code == 422
    assert set(missing.json()["errors"]) == {"type", "weight", "price"}
    dup = {"name": "Cat Eye Sunglasses", "type": "physical", "weight": 1, "price": 1}
    assert (await api.post("/v3/catalog/products", json=dup)).status_code == 409
    bad_category = {"name": "X", "type": "physical", "weight": 1, "price": 1, "categories": [999]}
    assert (await api.post("/v3/catalog/products", json=bad_category)).status_code == 409
    bad_type = {"name": "X", "type": "physical", "weight": 1, "price": -3}
    assert (await api.post("/v3/catalog/products", json=bad_type)).status_code == 422


async def test_update_of_a_missing_product_is_404_and_bad_values_422(api):
    assert (await api.put("/v3/catalog/products/9999", json={"price": 1})).status_code == 404
    r = await api.put("/v3/catalog/products/111", json={"availability": "sometimes"})
    assert r.status_code == 422
    assert "availability" in r.json()["errors"]


async def test_unchanged_update_fires_nothing(api, sim):
    r = await api.put("/v3/catalog/products/111", json={"price": 89})
    assert r.status_code == 200
    assert sim.demo_store.events == []


async def test_batch_update_up_to_ten(api, sim):
    r = await api.put(
        "/v3/catalog/products",
        json=[{"id": 111, "inventory_level": 2}, {"id": 121, "is_featured": True}],
    )
    assert r.status_code == 200
    assert [(p["id"], p["inventory_level"]) for p in r.json()["data"]] == [(111, 2), (121, 38)]
    too_many = [{"id": 111, "price": 1}] * 11
    big = await api.put("/v3/catalog/products", json=too_many)
    assert big.status_code == 413
    assert big.json()["title"].endswith("is 10.")


async def test_batch_update_is_all_or_nothing(api, sim):
    r = await api.put(
        "/v3/catalog/products", json=[{"id": 111, "price": 1}, {"id": 9999, "price": 2}]
    )
    assert r.status_code == 404
    assert sim.demo_store.products[111].price == 89
    r = await api.put("/v3/catalog/products", json=[{"id": 111, "price": 1}, {"price": 2}])
    assert r.status_code == 422


async def test_delete_with_id_in_filter(api, sim):
    assert (await api.delete("/v3/catalog/products")).status_code == 422
    assert (
        await api.delete("/v3/catalog/products", params={"id:in": "113,122"})
    ).status_code == 204
    assert 113 not in sim.demo_store.products
    assert 122 not in sim.demo_store.products


async def test_custom_fields_crud(api):
    base = "/v3/catalog/products/113/custom-fields"
    assert (await api.get(base)).json()["data"] == []
    created = await api.post(base, json={"name": "Material", "value": "Canvas"})
    assert created.status_code == 200
    field_id = created.json()["data"]["id"]
    listed = await api.get(base)
    assert listed.json()["data"] == [{"id": field_id, "name": "Material", "value": "Canvas"}]
    assert listed.json()["meta"]["pagination"]["total"] == 1
    changed = await api.put(f"{base}/{field_id}", json={"value": "Organic canvas"})
    assert changed.json()["data"]["value"] == "Organic canvas"
    assert (await api.get(f"{base}/{field_id}")).json()["data"]["value"] == "Organic canvas"
    assert (await api.post(base, json={"name": "No value"})).status_code == 422
    assert (await api.delete(f"{base}/{field_id}")).status_code == 204
    assert (await api.get(f"{base}/{field_id}")).status_code == 404
    assert (await api.get("/v3/catalog/products/9999/custom-fields")).status_code == 404


async def test_categories_list_filter_and_get(api):
    listed = await api.get("/v3/catalog/categories")
    assert [c["name"] for c in listed.json()["data"]][:2] == ["Shop All", "Sunglasses"]
    liked = await api.get("/v3/catalog/categories", params={"name:like": "sun"})
    assert [c["id"] for c in liked.json()["data"]] == [19]
    picked = await api.get("/v3/catalog/categories", params={"id:in": "20,21"})
    assert [c["name"] for c in picked.json()["data"]] == ["Accessories", "Apparel"]
    one = await api.get("/v3/catalog/categories/19")
    assert one.json()["data"]["name"] == "Sunglasses"
    assert (await api.get("/v3/catalog/categories/999")).status_code == 404


async def test_assign_product_to_category(api):
    r = await api.put("/v3/catalog/products/113", json={"categories": [18, 24]})
    assert r.json()["data"]["categories"] == [18, 24]
    in_sale = await api.get("/v3/catalog/products", params={"categories:in": 24})
    assert "Classic Canvas Tote" in names(in_sale.json())
