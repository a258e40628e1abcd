"""Orders v2: list, filters, 204s, count, create, update, products, shipments, statuses."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

from engine.clock import ManualClock

MONEY = re.compile(r"^-?\d+\.\d{4}$")
ADDRESS = {
    "first_name": "Jane",
    "last_name": "Doe",
    "street_1": "123 Main Street",
    "city": "Austin",
    "state": "Texas",
    "zip": "78751",
    "country": "United States",
    "country_iso2": "US",
    "email": "janedoe@example.com",
}


def scopes(sim) -> list[str]:
    return [e.scope for e in sim.demo_store.events]


async def test_list_is_a_bare_array_in_v2_formats(api):
    r = await api.get("/v2/orders")
    assert r.status_code == 200
    orders = r.json()
    assert isinstance(orders, list)
    assert len(orders) == 7
    assert [o["id"] for o in orders] == sorted(o["id"] for o in orders)
    first = orders[0]
    assert parsedate_to_datetime(first["date_created"]).tzinfo is not None
    assert first["date_created"].endswith("+0000")
    for key in ("subtotal_ex_tax", "total_inc_tax", "refunded_amount", "shipping_cost_inc_tax"):
        assert MONEY.match(first[key]), key
    assert first["products"]["resource"] == f"/orders/{first['id']}/products"


async def test_filters_and_sort(api, sim):
    statuses = {o.id: o.status_id for o in sim.demo_store.orders.values()}
    awaiting = await api.get("/v2/orders", params={"status_id": 11})
    assert [o["id"] for o in awaiting.json()] == [k for k, v in statuses.items() if v == 11]
    by_customer = await api.get("/v2/orders", params={"customer_id": 1})
    assert {o["customer_id"] for o in by_customer.json()} == {1}
    newest = await api.get("/v2/orders", params={"sort": "date_created:desc", "limit": 2})
    assert [o["id"] for o in newest.json()] == [106, 105]
    after = await api.get("/v2/orders", params={"min_id": 105})
    assert [o["id"] for o in after.json()] == [105, 106]


async def test_empty_result_and_page_past_the_end_are_204(api):
    assert (await api.get("/v2/orders", params={"status_id": 13})).status_code == 204
    past = await api.get("/v2/orders", params={"page": 3, "limit": 5})
    assert past.status_code == 204
    assert past.content == b""
    assert (await api.get("/v2/orders", params={"page": 2, "limit": 5})).status_code == 200


async def test_min_date_modified_accepts_rfc2822_and_iso(api, clock: ManualClock, sim):
    clock.advance(3600)
    cutoff = clock.now()
    await api.put("/v2/orders/101", json={"staff_notes": "call the customer"})
    for value in (cutoff.isoformat(), cutoff.strftime("%a, %d %b %Y %H:%M:%S +0000")):
        r = await api.get("/v2/orders", params={"min_date_modified": value})
        assert [o["id"] for o in r.json()] == [101], value
    created = await api.get("/v2/orders", params={"min_date_created": cutoff.isoformat()})
    assert created.status_code == 204


async def test_count_by_status(api, sim):
    r = await api.get("/v2/orders/count")
    body = r.json()
    assert body["count"] == 7
    counts = {s["id"]: s["count"] for s in body["statuses"]}
    assert set(counts) == set(range(15))
    assert counts[11] == 1
    assert counts[2] == 1
    assert counts[4] == 1
    assert counts[5] == 1
    assert [s["sort_order"] for s in body["statuses"]] == list(range(15))


async def test_order_statuses_0_to_14(api):
    r = await api.get("/v2/order_statuses")
    names = {s["id"]: s["name"] for s in r.json()}
    assert names == {
        0: "Incomplete",
        1: "Pending",
        2: "Shipped",
        3: "Partially Shipped",
        4: "Refunded",
        5: "Cancelled",
        6: "Declined",
        7: "Awaiting Payment",
        8: "Awaiting Pickup",
        9: "Awaiting Shipment",
        10: "Completed",
        11: "Awaiting Fulfillment",
        12: "Manual Verification Required",
        13: "Disputed",
        14: "Partially Refunded",
    }
    one = await api.get("/v2/order_statuses/11")
    assert one.json()["system_description"].startswith("Customer has completed")
    assert (await api.get("/v2/order_statuses/15")).status_code == 404


async def test_get_missing_order_is_a_v2_error_array(api):
    r = await api.get("/v2/orders/9999")
    assert r.status_code == 404
    assert r.json() == [{"status": 404, "message": "The requested resource was not found."}]


async def test_create_order_takes_stock_and_fires_webhooks(api, sim):
    body = {
        "customer_id": 2,
        "billing_address": ADDRESS,
        "status_id": 11,
        "products": [
            {"product_id": 111, "quantity": 2},
            {
                "product_id": 112,
                "variant_id": sim.demo_store.option_variants(112)[0].id,
                "quantity": 1,
            },
            {"name": "Engraving", "quantity": 1, "price_inc_tax": 5, "price_ex_tax": 5},
        ],
    }
    r = await api.post("/v2/orders", json=body)
    assert r.status_code == 200
    order = r.json()
    assert (order["status_id"], order["customer_id"], order["items_total"]) == (11, 2, 4)
    assert order["subtotal_ex_tax"] == "302.0000"  # 2 x 89 + 119 + 5
    store = sim.demo_store
    assert store.products[111].inventory_level == 9
    assert store.option_variants(112)[0].inventory_level == 4
    assert scopes(sim) == [
        "store/order/created",
        "store/product/inventory/order/updated",
        "store/sku/inventory/order/updated",
        "store/product/updated",
        "store/product/updated",
    ]
    assert store.events[1].data["inventory"] == {
        "product_id": 111,
        "method": "relative",
        "value": -2,
    }
    lines = await api.get(f"/v2/orders/{order['id']}/products")
    assert [(p["sku"], p["quantity"]) for p in lines.json()] == [
        ("SUN-CATEYE", 2),
        ("SUN-AVI-GLD", 1),
        ("", 1),
    ]
    assert lines.json()[1]["product_options"][0]["display_value"] == "Gold"
    one = await api.get(f"/v2/orders/{order['id']}/products/{lines.json()[0]['id']}")
    assert one.json()["price_ex_tax"] == "89.0000"


async def test_create_defaults_to_pending_and_checks_input(api):
    r = await api.post(
        "/v2/orders",
        json={"billing_address": ADDRESS, "products": [{"product_id": 113, "quantity": 1}]},
    )
    assert r.json()["status_id"] == 1
    assert r.json()["status"] == "Pending"
    bad = [
        {"products": [{"product_id": 113, "quantity": 1}]},
        {
            "billing_address": {**ADDRESS, "zip": 78751},
            "products": [{"product_id": 113, "quantity": 1}],
        },
        {"billing_address": ADDRESS, "products": []},
        {"billing_address": ADDRESS, "products": [{"product_id": 9999, "quantity": 1}]},
        {"billing_address": ADDRESS, "products": [{"product_id": 112, "quantity": 1}]},
        {"billing_address": ADDRESS, "products": [{"product_id": 113, "quantity": 0}]},
        {
            "billing_address": ADDRESS,
            "status_id": 99,
            "products": [{"product_id": 113, "quantity": 1}],
        },
    ]
    for body in bad:
        response = await api.post("/v2/orders", json=body)
        assert response.status_code == 400, body
        assert response.json()[0]["status"] == 400


async def test_create_beyond_stock_is_409_out_of_stock(api, sim):
    body = {"billing_address": ADDRESS, "products": [{"product_id": 120, "quantity": 4}]}
    r = await api.post("/v2/orders", json=body)
    assert r.status_code == 409
    error = r.json()[0]
    assert error["details"]["errors"][0]["type"] == "OutOfStock"
    assert error["details"]["errors"][0]["available_quantity"] == 3
    assert sim.demo_store.products[120].inventory_level == 3
    assert sim.demo_store.events == []


async def test_status_update_fires_status_and_update_and_restocks_on_cancel(api, sim):
    order_id = next(o.id for o in sim.demo_store.orders.values() if o.status_id == 11)
    before = sim.demo_store.products[111].inventory_level
    r = await api.put(f"/v2/orders/{order_id}", json={"status_id": 5, "staff_notes": "fraud"})
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["staff_notes"]) == ("Cancelled", "fraud")
    assert scopes(sim) == [
        "store/order/statusUpdated",
        "store/product/inventory/order/updated",
        "store/order/updated",
    ]
    assert sim.demo_store.events[0].data["status"] == {"previous_status_id": 11, "new_status_id": 5}
    assert sim.demo_store.products[111].inventory_level == before + 1
    again = await api.put(f"/v2/orders/{order_id}", json={"status_id": 5})
    assert again.status_code == 200
    assert len(sim.demo_store.events) == 3
    assert (await api.put(f"/v2/orders/{order_id}", json={"status_id": 42})).status_code == 400


async def test_customer_message_update_fires_only_order_updated(api, sim):
    r = await api.put("/v2/orders/100", json={"customer_message": "Gift wrap please"})
    assert r.json()["customer_message"] == "Gift wrap please"
    assert scopes(sim) == ["store/order/updated"]


async def test_archive(api, sim):
    assert (await api.delete("/v2/orders/100")).status_code == 204
    assert scopes(sim) == ["store/order/archived"]
    assert 100 not in [o["id"] for o in (await api.get("/v2/orders")).json()]
    assert (await api.get("/v2/orders/100")).json()["is_deleted"] is True


async def test_shipments(api, sim):
    order_id = next(o.id for o in sim.demo_store.orders.values() if o.status_id == 11)
    empty = await api.get(f"/v2/orders/{order_id}/shipments")
    assert empty.status_code == 204
    assert (await api.get(f"/v2/orders/{order_id}/shipments/count")).json() == {"count": 0}
    line = (await api.get(f"/v2/orders/{order_id}/products")).json()[0]
    created = await api.post(
        f"/v2/orders/{order_id}/shipments",
        json={
            "tracking_number": "EJ958083578UK",
            "shipping_provider": "",
            "comments": "Jane",
            "order_address_id": line["order_address_id"],
            "items": [{"order_product_id": line["id"], "quantity": 1}],
        },
    )
    assert created.status_code == 201
    shipment = created.json()
    assert shipment["items"] == [{"order_product_id": line["id"], "product_id": 111, "quantity": 1}]
    listed = await api.get(f"/v2/orders/{order_id}/shipments")
    assert [s["id"] for s in listed.json()] == [shipment["id"]]
    got = await api.get(f"/v2/orders/{order_id}/shipments/{shipment['id']}")
    assert got.json()["tracking_number"] == "EJ958083578UK"
    order = (await api.get(f"/v2/orders/{order_id}")).json()
    assert (order["status_id"], order["items_shipped"]) == (2, 1)
    assert scopes(sim) == [
        "store/shipment/created",
        "store/order/statusUpdated",
        "store/order/updated",
    ]
    assert sim.demo_store.events[0].data == {
        "type": "shipment",
        "id": shipment["id"],
        "orderId": order_id,
    }
    over = await api.post(
        f"/v2/orders/{order_id}/shipments",
        json={
            "order_address_id": line["order_address_id"],
            "items": [{"order_product_id": line["id"], "quantity": 1}],
        },
    )
    assert over.status_code == 400


async def test_partial_shipment_sets_partially_shipped(api, sim):
    order_id = next(
        o.id
        for o in sim.demo_store.orders.values()
        if len(o.lines) == 1 and o.lines[0].quantity == 3
    )
    line = sim.demo_store.orders[order_id].lines[0]
    r = await api.post(
        f"/v2/orders/{order_id}/shipments",
        json={
            "order_address_id": line.order_address_id,
            "items": [{"order_product_id": line.id, "quantity": 2}],
        },
    )
    assert r.status_code == 201
    assert sim.demo_store.orders[order_id].status_id == 3


async def test_messages(api, control, sim):
    assert (await api.get("/v2/orders/100/messages")).json() == []
    added = await control.post(
        "/_sim/stores/sousdemo/orders/100/messages", json={"message": "Where is my order?"}
    )
    assert added.status_code == 201
    messages = (await api.get("/v2/orders/100/messages")).json()
    assert [m["message"] for m in messages] == ["Where is my order?"]
    assert scopes(sim) == ["store/order/message/created"]
    assert sim.demo_store.events[0].data["message"] == {"order_message_id": messages[0]["id"]}


async def test_the_shipping_addresses_link_of_an_order_answers(api, sim):
    order = (await api.get("/v2/orders/100")).json()
    link = order["shipping_addresses"]["resource"]
    listed = await api.get(f"/v2{link}")
    assert listed.status_code == 200
    [address] = listed.json()
    stored = sim.demo_store.orders[100]
    assert (address["id"], address["order_id"]) == (stored.order_address_id, 100)
    assert address["zip"] == stored.shipping_address["zip"]
    assert address["items_total"] == sum(line.quantity for line in stored.lines)
    assert MONEY.match(address["cost_inc_tax"])
    one = await api.get(f"/v2{link}/{address['id']}")
    assert one.json() == address
    assert (await api.get(f"/v2{link}/{address['id'] + 999}")).status_code == 404
    assert (await api.get("/v2/orders/9999/shipping_addresses")).status_code == 404


async def test_a_shipment_needs_the_integer_id_of_a_shipping_address(api, sim):
    order_id = next(o.id for o in sim.demo_store.orders.values() if o.status_id == 11)
    line = sim.demo_store.orders[order_id].lines[0]
    items = [{"order_product_id": line.id, "quantity": 1}]
    for given in ({"order_address_id": None}, {}, {"order_address_id": "1"},
                  {"order_address_id": line.order_address_id + 999}):  # fmt: skip
        refused = await api.post(f"/v2/orders/{order_id}/shipments", json={**given, "items": items})
        assert refused.status_code == 400, given
        assert "order_address_id" in refused.json()[0]["message"]
        assert "/shipping_addresses" in refused.json()[0]["message"]
    assert sim.demo_store.shipments == {} or all(
        s.order_id != order_id for s in sim.demo_store.shipments.values()
    )
    assert scopes(sim) == []
