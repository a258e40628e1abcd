"""Shoppers: BigCommerce's purchasability rules, the pre-order decision, stock, the webhooks a
storefront order fires, the burst helper and direct stock changes."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.bigcommerce.simulator import Line, PurchaseRefused
from connectors.bigcommerce.simulator.shoppers import burst, checkout

ORDERS = "/_sim/stores/sousdemo/orders"


def scopes(sim) -> list[str]:
    return [e.scope for e in sim.demo_store.events]


async def order(control, *lines: dict[str, Any], customer_id: int = 0):
    return await control.post(ORDERS, json={"customer_id": customer_id, "lines": list(lines)})


async def test_a_checkout_takes_stock_creates_the_order_and_fires_storefront_events(
    control, api, sim
):
    r = await order(control, {"product_id": 111, "quantity": 3}, customer_id=2)
    assert r.status_code == 201
    placed = r.json()["order"]
    assert (placed["status_id"], placed["customer_id"], placed["order_source"]) == (11, 2, "www")
    assert sim.demo_store.products[111].inventory_level == 8
    assert scopes(sim) == [
        "store/order/created",
        "store/product/inventory/order/updated",
        "store/product/updated",
        "store/order/statusUpdated",
    ]
    assert sim.demo_store.events[1].data["inventory"]["value"] == -3
    fetched = await api.get(f"/v2/orders/{placed['id']}")
    assert fetched.json()["total_inc_tax"] == "267.0000"
    product = (await api.get("/v3/catalog/products/111")).json()["data"]
    assert (product["inventory_level"], product["total_sold"]) == (8, 5)


async def test_variant_tracked_checkout_takes_the_variant_stock(control, sim):
    medium = sim.demo_store.option_variants(115)[1]
    r = await order(control, {"product_id": 115, "variant_id": medium.id, "quantity": 4})
    assert r.status_code == 201
    assert medium.inventory_level == 5  # 10 seeded, 1 taken by a seeded order
    assert scopes(sim)[1] == "store/sku/inventory/order/updated"


@pytest.mark.parametrize(
    ("line", "status", "reason"),
    [
        ({"product_id": 119, "quantity": 1}, 422, "disabled"),
        ({"product_id": 116, "quantity": 1}, 409, "out_of_stock"),
        ({"product_id": 120, "quantity": 4}, 409, "out_of_stock"),
        ({"product_id": 115, "quantity": 1}, 422, "variant_required"),
        ({"product_id": 9999, "quantity": 1}, 422, "not_found"),
        ({"product_id": 111, "quantity": 0}, 422, "not_found"),
        ({"product_id": 111, "variant_id": 999, "quantity": 1}, 422, "not_found"),
    ],
)
async def test_refusals(control, sim, line, status, reason):
    r = await order(control, line)
    assert r.status_code == status
    body = r.json()
    assert body["reason"] == reason
    assert body["status"] == status
    assert body["errors"][0]["product_id"] == line["product_id"]
    assert sim.demo_store.events == []
    assert len(sim.demo_store.orders) == 7


async def test_out_of_stock_variant_and_purchasing_disabled_variant(control, sim):
    large = sim.demo_store.option_variants(115)[2]
    r = await order(control, {"product_id": 115, "variant_id": large.id, "quantity": 1})
    assert (r.status_code, r.json()["reason"]) == (409, "out_of_stock")
    assert r.json()["errors"][0]["available_quantity"] == 0
    navy = sim.demo_store.option_variants(114)[1]
    r = await order(control, {"product_id": 114, "variant_id": navy.id, "quantity": 1})
    assert (r.status_code, r.json()["reason"]) == (422, "purchasing_disabled")
    assert r.json()["errors"][0]["message"] == "Navy is sold out for the season"


async def test_lines_for_the_same_stock_add_up_and_refusal_is_all_or_nothing(control, sim):
    r = await order(
        control,
        {"product_id": 120, "quantity": 2},
        {"product_id": 111, "quantity": 1},
        {"product_id": 120, "quantity": 2},
    )
    assert r.status_code == 409
    assert sim.demo_store.products[120].inventory_level == 3
    assert sim.demo_store.products[111].inventory_level == 11


async def test_order_quantity_minimum_and_maximum(control, api):
    await api.put(
        "/v3/catalog/products/121", json={"order_quantity_minimum": 2, "order_quantity_maximum": 4}
    )
    low = await order(control, {"product_id": 121, "quantity": 1})
    high = await order(control, {"product_id": 121, "quantity": 5})
    assert (low.json()["reason"], high.json()["reason"]) == (
        "quantity_below_minimum",
        "quantity_above_maximum",
    )
    assert (await order(control, {"product_id": 121, "quantity": 4})).status_code == 201


async def test_preorder_without_tracking_sells_any_quantity_and_moves_no_stock(control, sim):
    r = await order(control, {"product_id": 118, "quantity": 500})
    assert r.status_code == 201
    assert sim.demo_store.products[118].inventory_level == 0
    assert not any("inventory" in s for s in scopes(sim))


async def test_preorder_with_tracking_is_capped_by_the_tracked_stock(control, sim):
    assert (await order(control, {"product_id": 117, "quantity": 20})).status_code == 201
    assert sim.demo_store.products[117].inventory_level == 0
    refused = await order(control, {"product_id": 117, "quantity": 1})
    assert (refused.status_code, refused.json()["reason"]) == (409, "out_of_stock")


async def test_preorder_only_product_becomes_available_on_its_release_date(api, clock, sim):
    product = (await api.get("/v3/catalog/products/117")).json()["data"]
    assert product["availability"] == "preorder"
    clock.advance(31 * 24 * 3600)
    product = (await api.get("/v3/catalog/products/117")).json()["data"]
    assert product["availability"] == "available"
    assert scopes(sim) == ["store/product/updated"]


async def test_unknown_customer_is_refused(control):
    r = await order(control, {"product_id": 111, "quantity": 1}, customer_id=99)
    assert (r.status_code, r.json()["reason"]) == (422, "not_found")


async def test_python_api_checkout_and_refusal(sim):
    store = sim.demo_store
    placed = checkout(store, [Line(122, 2)], customer_id=3)
    assert placed.customer_id == 3
    assert placed.lines[0].quantity == 2
    with pytest.raises(PurchaseRefused) as refused:
        checkout(store, [Line(116)])
    assert refused.value.reason == "out_of_stock"


async def test_refund_restocks_and_fires_refund_events(control, sim):
    placed = (await order(control, {"product_id": 111, "quantity": 2})).json()["order"]
    sim.demo_store.events.clear()
    r = await control.post(f"{ORDERS}/{placed['id']}/refund", json={"amount": 10})
    assert r.status_code == 200
    assert sim.demo_store.orders[placed["id"]].status_id == 14
    assert scopes(sim) == [
        "store/order/refund/created",
        "store/order/statusUpdated",
        "store/order/updated",
    ]
    sim.demo_store.events.clear()
    r = await control.post(f"{ORDERS}/{placed['id']}/refund", json={})
    assert sim.demo_store.orders[placed["id"]].status_id == 4
    assert "store/product/inventory/order/updated" in scopes(sim)
    assert sim.demo_store.products[111].inventory_level == 11
    too_much = await control.post(f"{ORDERS}/{placed['id']}/refund", json={"amount": 1})
    assert too_much.status_code == 422


async def test_set_stock_fires_inventory_webhooks(control, sim):
    r = await control.put("/_sim/stores/sousdemo/stock", json={"product_id": 111, "level": 0})
    assert r.json() == {"product_id": 111, "variant_id": None, "level": 0, "delta": -11}
    gold = sim.demo_store.option_variants(112)[0]
    r = await control.put(
        "/_sim/stores/sousdemo/stock", json={"product_id": 112, "variant_id": gold.id, "level": 50}
    )
    assert r.json()["delta"] == 45
    assert scopes(sim) == [
        "store/product/inventory/updated",
        "store/product/updated",
        "store/sku/inventory/updated",
    ]
    missing = await control.put("/_sim/stores/sousdemo/stock", json={"product_id": 9, "level": 1})
    assert missing.status_code == 404


async def test_burst_spreads_orders_and_stock_updates(control, sim):
    r = await control.post(
        "/_sim/stores/sousdemo/burst",
        json={
            "orders": 30,
            "product_ids": [111, 120, 112],
            "inventory_updates": 3,
            "restock_level": 4,
        },
    )
    assert r.status_code == 200
    summary = r.json()
    assert summary["orders_placed"] + summary["orders_refused"] == 30
    assert summary["inventory_updates"] == 3
    assert summary["orders_refused"] > 0
    assert set(summary["refused_by_reason"]) == {"out_of_stock"}
    assert summary["events"] == len(sim.demo_store.events)
    assert len(sim.demo_store.orders) == 7 + summary["orders_placed"]


async def test_burst_over_the_first_m_products(sim):
    result = burst(sim.demo_store, orders=12, products=3)
    targets = {sim.demo_store.orders[i].lines[0].product_id for i in result.orders_placed}
    assert targets <= {111, 112, 113}
    assert len(result.orders_placed) + sum(result.refused.values()) == 12
