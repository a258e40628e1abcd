"""The connector against the store simulator over real HTTP: hooks registered, stock changed in
the simulator, webhooks delivered to Sous's endpoint, typed events and runs asserted. Every
request the connector sends is checked against BigCommerce's OpenAPI documents at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from connectors.bigcommerce.simulator.webhooks import envelope
from connectors.bigcommerce.stores import SCOPES
from engine.store.models import StoreRow
from engine.store.vault import Cipher
from tests.connectors.bigcommerce.harness import (
    SECRET_KEY,
    Live,
    Servers,
    caused,
    live_rig,
    servers_up,
)
from tests.fakes import Recorder

pytestmark = pytest.mark.asyncio(loop_scope="module")

SOLD_OUT = """\
id: sold-out
name: Tell staff when a product sells out
trigger: {type: bigcommerce.product.out_of_stock}
actions:
  - use: test.record
    with: {message: "{{ product.name }} sold out ({{ previous }} -> {{ current }})"}
"""
SHIPPED = """\
id: shipped
name: Note shipped orders
trigger:
  type: bigcommerce.order.status_changed
  with: {to: [shipped]}
actions:
  - use: test.record
    with: {message: "order {{ order.id }}: {{ previous_status }} -> {{ status }}"}
"""
STILL_OUT = """\
id: still-out
name: A day after a sell-out, if still out of stock, tell staff
trigger: {type: bigcommerce.product.out_of_stock}
actions:
  - id: pause
    use: core.wait
    with: {for: 1d, recheck: true}
  - use: test.record
    with: {message: "{{ product.name }} still out ({{ current }})"}
conditions:
  - {"<=": [{"var": "product.inventory_level"}, 0]}
"""
TOUCH = """\
id: touch-{name}
name: On product updated, update the product
trigger: {{type: bigcommerce.product.updated}}
actions:
  - use: bigcommerce.product.update
    with:
      product_id: "{{{{ product.id }}}}"
      {field}: "{name} {{{{ event.id }}}}"
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers() -> AsyncIterator[Servers]:
    async with servers_up() as up:
        yield up


@pytest_asyncio.fixture(loop_scope="module")
async def live(servers: Servers, tmp_path: Path, recorder: Recorder) -> AsyncIterator[Live]:
    async with live_rig(servers, tmp_path, recorder) as rig:
        yield rig
        assert rig.transport.check_all() > 0  # every request matches BigCommerce's documents
        rig.check_payloads()  # every event's payload matches the model the catalog publishes


def levels(live: Live, type_: str) -> list[tuple[int, int]]:
    return [(e.payload["previous"], e.payload["current"]) for e in live.events(type_)]


async def test_hooks_are_registered_once_with_the_secret(live: Live) -> None:
    hooks = list(live.sim_store.hooks.values())
    assert sorted(h.scope for h in hooks) == sorted(SCOPES)
    assert {h.destination for h in hooks} == {
        f"{live.sous_url}/v1/webhooks/bigcommerce/{live.store_id}"
    }
    assert all(h.headers == {"X-Sous-Webhook-Secret": live.secret} and h.is_active for h in hooks)
    again = await live.runtime.register(
        workspace="default", store_id=live.store_id, store_hash=live.store_hash,
        api_base_url=f"{live.sim_url}/stores/{live.store_hash}",
        access_token=live.sim_store.access_token, webhook_secret=live.secret,
    )  # fmt: skip
    assert (again["created"], again["updated"], again["deleted"]) == (0, 0, 0)
    assert again["baseline"] == 0  # the snapshots were taken the first time
    assert sorted(h.id for h in live.sim_store.hooks.values()) == sorted(h.id for h in hooks)


async def test_stock_transitions_fire_once_on_the_change(live: Live, tmp_path: Path) -> None:
    live.load(tmp_path, SOLD_OUT)
    cat = live.product("Cat Eye Sunglasses")  # tracked by product, warning level 5
    start = cat.inventory_level
    live.clock.advance(1)
    await live.set_stock(cat.id, 3)  # crosses the warning level
    await live.settle()
    await live.set_stock(cat.id, 0)
    await live.settle()
    live.clock.advance(1)
    featured = await live.store_api(
        "PUT", f"/v3/catalog/products/{cat.id}", json={"is_featured": False}
    )
    assert featured.status_code == 200
    await live.set_stock(cat.id, 0)  # no change, no webhook
    await live.settle()
    assert len(live.events("bigcommerce.product.updated")) >= 2  # seen while at zero
    await live.set_stock(cat.id, 8)
    await live.settle()
    assert levels(live, "bigcommerce.product.inventory_changed") == [(start, 3), (3, 0), (0, 8)]
    assert levels(live, "bigcommerce.product.low_stock") == [(start, 3)]
    assert levels(live, "bigcommerce.product.out_of_stock") == [(3, 0)]
    assert levels(live, "bigcommerce.product.back_in_stock") == [(0, 8)]
    [out] = live.events("bigcommerce.product.out_of_stock")
    product = out.payload["product"]
    assert product["name"] == "Cat Eye Sunglasses"
    assert product["inventory_level"] == 0
    assert product["custom_fields"] == {"Lens": "Polarized", "UV protection": "UV400"}
    assert [p["message"] for p in live.recorder.named("test.record")] == [
        "Cat Eye Sunglasses sold out (3 -> 0)"
    ]


async def test_a_wait_rechecks_the_product_as_the_store_holds_it_now(
    live: Live, tmp_path: Path
) -> None:
    uid = live.load(tmp_path, STILL_OUT)
    cat, holder = live.product("Cat Eye Sunglasses"), live.product("Limited Edition Print")
    for product in (cat, holder):
        await live.set_stock(product.id, 0)
    await live.settle()
    assert sorted(r.status for r in live.runs(uid)) == ["waiting", "waiting"]
    await live.set_stock(cat.id, 6)  # restocked during the wait
    await live.settle()
    live.clock.advance(86_400)
    await live.settle()
    product_of = {
        e.id: e.payload["product"]["id"] for e in live.events("bigcommerce.product.out_of_stock")
    }
    outcome = {product_of[r.event_id]: r for r in live.runs(uid)}
    assert outcome[cat.id].status == "skipped"
    assert "condition 0 no longer holds" in str(outcome[cat.id].status_reason)
    assert outcome[holder.id].status == "succeeded"
    messages = [p["message"] for p in live.recorder.named("test.record")]
    assert messages == ["Limited Edition Print still out (0)"]


async def test_variant_transitions(live: Live) -> None:
    aviator = live.product("Aviator Sunglasses")  # tracked by variant; Silver is out of stock
    silver = next(v for v in live.sim_store.option_variants(aviator.id) if v.sku == "SUN-AVI-SLV")
    live.clock.advance(1)
    await live.set_stock(aviator.id, 4, variant_id=silver.id)
    await live.settle()
    await live.set_stock(aviator.id, 0, variant_id=silver.id)
    await live.settle()
    assert levels(live, "bigcommerce.variant.back_in_stock") == [(0, 4)]
    assert levels(live, "bigcommerce.variant.low_stock") == [(4, 0)]  # warning level 2
    [out] = live.events("bigcommerce.variant.out_of_stock")
    assert out.payload["variant"]["sku"] == "SUN-AVI-SLV"
    assert out.payload["product"]["id"] == aviator.id
    assert live.events("bigcommerce.product.out_of_stock") == []  # the product still has stock


async def test_order_status_changes_carry_names(live: Live, tmp_path: Path) -> None:
    live.load(tmp_path, SHIPPED)
    scarf = live.product("Silk Scarf")
    placed = await live.control(
        "POST",
        "/orders",
        json={"customer_id": 1, "lines": [{"product_id": scarf.id, "quantity": 2}]},
    )
    order_id = placed.json()["order"]["id"]
    await live.settle()
    live.clock.advance(1)
    shipped = await live.store_api("PUT", f"/v2/orders/{order_id}", json={"status_id": 2})
    assert shipped.status_code == 200
    await live.settle()
    [created] = live.events("bigcommerce.order.created")
    order = created.payload["order"]
    assert order["id"] == order_id
    assert order["status"] == "Awaiting Fulfillment"
    assert [(line["product_id"], line["quantity"]) for line in order["products"]] == [(scarf.id, 2)]
    assert order["total_inc_tax"] == 118.0
    assert order["date_created"].endswith("+00:00")
    changes = [
        (
            e.payload["previous_status_id"],
            e.payload["previous_status"],
            e.payload["status_id"],
            e.payload["status"],
        )
        for e in live.events("bigcommerce.order.status_changed")
    ]
    assert changes == [
        (0, "Incomplete", 11, "Awaiting Fulfillment"),
        (11, "Awaiting Fulfillment", 2, "Shipped"),
    ]
    assert [p["message"] for p in live.recorder.named("test.record")] == [
        f"order {order_id}: Awaiting Fulfillment -> Shipped"
    ]
    statuses = [r for r in live.transport.requests if r.url.path.endswith("/v2/order_statuses")]
    assert len(statuses) == 1  # cached


async def test_a_redelivered_webhook_is_dropped(live: Live) -> None:
    cat = live.product("Cat Eye Sunglasses")
    live.clock.advance(1)
    await live.set_stock(cat.id, 2)
    await live.settle()
    before = len(live.events("bigcommerce.webhook"))
    delivered = next(
        r for r in live.sim.deliveries.log
        if r.store_hash == live.store_hash and r.scope == "store/product/inventory/updated"
    )  # fmt: skip
    message_id = delivered.headers["webhook-id"]
    again = await live.post_webhook(delivered.payload, message_id=message_id)
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate"}
    wrong = await live.post_webhook(delivered.payload, secret="nope", message_id=message_id)
    assert wrong.status_code == 401
    await live.settle()
    assert len(live.events("bigcommerce.webhook")) == before
    # without its webhook-id a retry cannot be told from a second change: it is stored, and the
    # normaliser finds nothing new in the store
    bare = await live.post_webhook(delivered.payload)
    assert bare.json() == {"status": "accepted"}
    await live.settle()
    assert len(live.events("bigcommerce.webhook")) == before + 1
    assert len(live.events("bigcommerce.product.inventory_changed")) == 1


async def test_two_sales_of_one_unit_in_one_second_lose_nothing(live: Live, tmp_path: Path) -> None:
    live.load(tmp_path, SOLD_OUT)
    cat = live.product("Cat Eye Sunglasses")
    await live.set_stock(cat.id, 2)
    await live.settle()
    live.clock.advance(1)
    sales = []
    for _ in range(2):  # same second: BigCommerce sends the same body twice
        sale = {"customer_id": 1, "lines": [{"product_id": cat.id, "quantity": 1}]}
        await live.control("POST", "/orders", json=sale)
        await live.settle()
        scope = "store/product/inventory/order/updated"
        sales.append(next(
            r for r in reversed(live.sim.deliveries.log)
            if r.store_hash == live.store_hash and r.scope == scope
        ))  # fmt: skip
    first, second = sales
    assert first.payload == second.payload  # data, hash and created_at alike
    assert first.headers["webhook-id"] != second.headers["webhook-id"]
    assert levels(live, "bigcommerce.product.inventory_changed")[-2:] == [(2, 1), (1, 0)]
    assert levels(live, "bigcommerce.product.out_of_stock") == [(1, 0)]
    assert [p["message"] for p in live.recorder.named("test.record")] == [
        "Cat Eye Sunglasses sold out (1 -> 0)"
    ]
    retry = await live.post_webhook(second.payload, message_id=second.headers["webhook-id"])
    assert retry.json() == {"status": "duplicate"}  # a retry of one of them is still dropped


async def test_updating_the_product_on_product_updated_does_not_loop(
    live: Live, tmp_path: Path
) -> None:
    uid = live.load(tmp_path, TOUCH.format(name="a", field="preorder_message"))
    cat = live.product("Cat Eye Sunglasses")
    live.clock.advance(1)
    await live.store_api("PUT", f"/v3/catalog/products/{cat.id}", json={"is_featured": False})
    await live.settle()
    runs = live.runs(uid)
    assert [r.status for r in runs] == ["succeeded"]
    first, second = live.events("bigcommerce.product.updated")
    assert caused(first) is None
    own = caused(second)
    assert own is not None
    assert own.recipe_uid == uid
    assert own.run_id == runs[0].id
    assert own.depth == 1
    [match] = live.matches(second.id)
    assert match.stage == "loop"
    assert not match.matched
    assert cat.preorder_message.startswith("a evt_")
    puts = [r for r in live.transport.requests if r.method == "PUT"]
    assert len(puts) == 1


async def test_two_recipes_updating_each_other_stop_at_the_depth_limit(
    live: Live, tmp_path: Path
) -> None:
    a = live.load(tmp_path, TOUCH.format(name="a", field="preorder_message"))
    b = live.load(tmp_path, TOUCH.format(name="b", field="availability_description"))
    cat = live.product("Cat Eye Sunglasses")
    live.clock.advance(1)
    await live.store_api("PUT", f"/v3/catalog/products/{cat.id}", json={"is_featured": False})
    await live.settle(limit=20)
    runs = live.runs(a) + live.runs(b)
    stopped = [r for r in runs if r.status == "loop_stopped"]
    assert stopped
    assert len(runs) <= 2 * (live.engine.settings.max_depth + 2)
    assert "chain deeper than" in (stopped[0].status_reason or "")
    chains = [caused(e) for e in live.events("bigcommerce.product.updated")]
    depths = sorted({c.depth for c in chains if c is not None})
    assert depths == list(range(1, depths[-1] + 1))
    assert depths[-1] > live.engine.settings.max_depth


async def test_reconcile_reactivates_hooks_and_catches_up(live: Live) -> None:
    for hook in live.sim_store.hooks.values():  # what BigCommerce does after 48 h of failures
        hook.is_active, hook.status = False, "deactivated"
    cat = live.product("Cat Eye Sunglasses")
    live.clock.advance(1)
    await live.set_stock(cat.id, 0)
    await live.settle()
    assert live.events("bigcommerce.product.out_of_stock") == []  # nothing was delivered
    report = await live.runtime.reconcile_all()
    await live.settle()
    assert report[live.store_id]["hooks"]["reactivated"] == len(SCOPES)
    assert all(h.is_active for h in live.sim_store.hooks.values())
    [out] = live.events("bigcommerce.product.out_of_stock")
    assert out.source == "poll"
    assert out.payload["current"] == 0
    assert report[live.store_id]["products"] >= 1
    again = await live.runtime.reconcile_all()
    await live.settle()
    assert again[live.store_id]["products"] == 0
    assert again[live.store_id]["orders"] == 0
    assert len(live.events("bigcommerce.product.out_of_stock")) == 1
    health = live.runtime.health("default", live.store_hash)
    assert health is not None
    assert health["hooks_active"] == len(SCOPES)
    assert live.runtime.metrics()[live.store_hash]["requests"] == len(live.transport.requests)


async def test_a_webhook_and_a_poll_of_the_same_change_fire_once(live: Live) -> None:
    cat = live.product("Cat Eye Sunglasses")
    live.clock.advance(1)
    await live.set_stock(cat.id, 0)
    await live.settle()
    handle = await live.runtime.stores.by_id(live.store_id)
    data = {"type": "product", "id": cat.id}  # the poll reports the same change again
    assert await live.runtime.poll(handle, "store/product/updated", data, "forced") == 1
    await live.settle()
    assert len(live.events("bigcommerce.product.out_of_stock")) == 1
    assert len(live.events("bigcommerce.product.updated")) == 1
    assert len(live.events("bigcommerce.poll")) == 1


async def test_catalog_customer_and_shipment_events(live: Live) -> None:
    made = await live.store_api(
        "POST", "/v3/catalog/products",
        json={"name": "Gift Wrap", "type": "physical", "weight": 0, "price": 5, "sku": "GIFT-WRAP"},
    )  # fmt: skip
    pid = made.json()["data"]["id"]
    aviator = live.product("Aviator Sunglasses")
    option = [{"option_display_name": "Frame", "label": "Red"}]
    added = await live.store_api(
        "POST", f"/v3/catalog/products/{aviator.id}/variants",
        json={"sku": "SUN-AVI-RED", "inventory_level": 2, "option_values": option},
    )  # fmt: skip
    vid = added.json()["data"]["id"]
    await live.settle()
    live.clock.advance(1)
    await live.store_api("DELETE", f"/v3/catalog/products/{aviator.id}/variants/{vid}")
    await live.store_api("DELETE", f"/v3/catalog/products/{pid}")
    moved = await live.store_api("PUT", "/v2/customers/2", json={"customer_group_id": 3})
    assert moved.status_code == 200
    order = next(o for o in live.sim_store.orders.values() if o.status_id == 11)
    items = [{"order_product_id": line.id, "quantity": line.quantity} for line in order.lines]
    shipped = await live.store_api(
        "POST", f"/v2/orders/{order.id}/shipments",
        json={"order_address_id": order.order_address_id, "items": items, "tracking_number": "1Z9"},
    )  # fmt: skip
    assert shipped.status_code == 201
    await live.control("POST", f"/orders/{order.id}/refund", json={})
    await live.settle()
    [created] = live.events("bigcommerce.product.created")
    assert created.payload["product"]["sku"] == "GIFT-WRAP"
    assert [e.payload["product"]["id"] for e in live.events("bigcommerce.product.deleted")] == [pid]
    [variant] = live.events("bigcommerce.variant.created")
    assert variant.payload["variant"]["sku"] == "SUN-AVI-RED"
    [gone] = live.events("bigcommerce.variant.deleted")
    assert gone.payload["variant"]["id"] == vid
    [customer] = live.events("bigcommerce.customer.updated")
    assert customer.payload["customer"]["customer_group_id"] == 3
    [shipment] = live.events("bigcommerce.shipment.created")
    assert shipment.payload["order_id"] == order.id
    assert shipment.payload["shipment"]["tracking_number"] == "1Z9"
    [refund] = live.events("bigcommerce.order.refunded")
    assert refund.payload["order"]["id"] == order.id
    statuses = [
        (e.payload["status_id"], e.payload["status"])
        for e in live.events("bigcommerce.order.status_changed")
    ]
    assert sorted(statuses) == [(2, "Shipped"), (4, "Refunded")]  # delivered concurrently
    assert live.check_payloads() >= 9


async def test_a_missed_new_order_is_caught_up_as_created(live: Live) -> None:
    for hook in live.sim_store.hooks.values():
        hook.is_active = False
    live.clock.advance(1)
    scarf = live.product("Silk Scarf")
    placed = await live.control(
        "POST", "/orders", json={"lines": [{"product_id": scarf.id, "quantity": 1}]}
    )
    await live.settle()
    assert live.events("bigcommerce.order.created") == []
    report = await live.runtime.reconcile_all()
    await live.settle()
    [created] = live.events("bigcommerce.order.created")
    assert created.source == "poll"
    assert created.payload["order"]["id"] == placed.json()["order"]["id"]
    assert report[live.store_id]["orders"] == 1


async def test_a_disconnected_store_loses_its_hooks_and_endpoint(live: Live) -> None:
    with live.engine.db.session() as s:  # what DELETE /v1/stores/{store} does first
        row = s.get(StoreRow, live.store_id)
        assert row is not None
        s.delete(row)
        s.commit()
    await live.runtime.stores.unregister(workspace="default", store_hash=live.store_hash)
    assert live.sim_store.hooks == {}
    cat = live.product("Cat Eye Sunglasses")
    answer = await live.post_webhook({"scope": "store/product/updated", "store_id": "1",
                                      "data": {"type": "product", "id": cat.id}, "hash": "x",
                                      "created_at": 1, "producer": "stores/x"})  # fmt: skip
    assert answer.status_code == 404


async def test_registering_again_with_a_new_secret_updates_every_hook(live: Live) -> None:
    rotated = "whsec-rotated-0123"
    with live.engine.db.session() as s:  # the API saves the new secret, then registers
        row = s.get(StoreRow, live.store_id)
        assert row is not None
        row.webhook_secret_enc = Cipher(SECRET_KEY).encrypt(rotated)
        s.add(row)
        s.commit()
    report = await live.runtime.register(
        workspace="default", store_id=live.store_id, store_hash=live.store_hash,
        api_base_url=f"{live.sim_url}/stores/{live.store_hash}",
        access_token=live.sim_store.access_token, webhook_secret=rotated,
    )  # fmt: skip
    assert report["updated"] == len(SCOPES)
    assert report["created"] == 0
    assert all(
        h.headers == {"X-Sous-Webhook-Secret": rotated} for h in live.sim_store.hooks.values()
    )
    envelope = {"scope": "store/product/updated", "store_id": "1", "hash": "h", "created_at": 5,
                "data": {"type": "product", "id": 1}, "producer": "stores/x"}  # fmt: skip
    assert (await live.post_webhook(envelope)).status_code == 401  # the old secret
    assert (await live.post_webhook(envelope, secret=rotated)).status_code == 200


async def test_a_sale_before_the_first_read_of_a_new_product_still_sells_it_out(
    live: Live, tmp_path: Path
) -> None:
    live.load(tmp_path, SOLD_OUT)
    for hook in live.sim_store.hooks.values():  # deliveries are posted below, in a fixed order
        hook.is_active = False
    created = await live.store_api("POST", "/v3/catalog/products", json={
        "name": "Launch Tote", "type": "physical", "weight": 1, "price": 30,
        "inventory_tracking": "product", "inventory_level": 1,
    })  # fmt: skip
    assert created.status_code == 200, created.text
    pid = created.json()["data"]["id"]
    live.clock.advance(1)
    sale = {"customer_id": 1, "lines": [{"product_id": pid, "quantity": 1}]}
    await live.control("POST", "/orders", json=sale)
    wanted = ("store/product/created", "store/product/inventory/order/updated")
    for scope in wanted:  # the created delivery is read after the sale, then the sale's arrives
        [event] = [e for e in live.sim_store.events if e.scope == scope and e.data["id"] == pid]
        answer = await live.post_webhook(envelope(live.sim_store, event))
        assert answer.json() == {"status": "accepted"}
        await live.settle()
    assert levels(live, "bigcommerce.product.out_of_stock") == [(1, 0)]
    assert [p["message"] for p in live.recorder.named("test.record")] == [
        "Launch Tote sold out (1 -> 0)"
    ]
