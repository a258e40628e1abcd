"""What changed on an update, against the simulator over real HTTP: product, variant, order and
customer updates carry the names of the watched fields that changed and their previous values
(from the snapshot taken when the store was connected, then at each read), and recipes fire on
"price changed" or "moved to category X" reading old and new."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.connectors.bigcommerce.harness import Live, Servers, live_rig, servers_up
from tests.fakes import Recorder

pytestmark = pytest.mark.asyncio(loop_scope="module")

PRICE = """\
id: price-changed
name: A price changed
trigger:
  type: bigcommerce.product.updated
  with: {fields: [price]}
actions:
  - use: test.record
    with: {message: "{{ product.name }}: {{ previous.price }} -> {{ product.price }}"}
"""
MOVED = """\
id: moved
name: Moved into a category
trigger:
  type: bigcommerce.product.updated
  with: {fields: [categories]}
conditions:
  - {"in": [CATEGORY, {"var": "product.categories"}]}
  - {"!": {"in": [CATEGORY, {"var": "previous.categories"}]}}
actions:
  - use: test.record
    with: {message: "{{ product.name }} moved into CATEGORY"}
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


def updates(live: Live, type_: str) -> list[tuple[list[str], dict[str, Any]]]:
    return [(e.payload["changed"], e.payload["previous"]) for e in live.events(type_)]


async def change(live: Live, method: str, path: str, body: Any) -> None:
    live.clock.advance(1)
    answer = await live.store_api(method, path, json=body)
    assert answer.status_code < 300, answer.text
    await live.settle()


async def test_a_product_update_carries_the_previous_values(live: Live, tmp_path: Path) -> None:
    live.load(tmp_path, PRICE)
    cat = live.product("Cat Eye Sunglasses")  # the simulator's record: it changes with the store
    old_price, categories, featured = float(cat.price), sorted(cat.categories), cat.is_featured
    new = sorted(set(live.sim_store.categories) - set(categories))[0]
    live.load(tmp_path, MOVED.replace("CATEGORY", str(new)))
    path = f"/v3/catalog/products/{cat.id}"
    await change(live, "PUT", path, {"price": old_price + 10})
    await change(live, "PUT", path, {"categories": [*categories, new]})
    await change(live, "PUT", path, {"is_featured": not featured})
    assert updates(live, "bigcommerce.product.updated") == [
        (["price"], {"price": old_price}),
        (["categories"], {"categories": categories}),
        (["is_featured"], {"is_featured": featured}),
    ]
    messages = [p["message"] for p in live.recorder.named("test.record")]
    assert messages == [
        f"Cat Eye Sunglasses: {old_price:g} -> {old_price + 10:g}",
        f"Cat Eye Sunglasses moved into {new}",
    ]


async def test_a_variant_update_carries_the_previous_values(live: Live) -> None:
    aviator = live.product("Aviator Sunglasses")
    silver = next(v for v in live.sim_store.variants.values() if v.sku == "SUN-AVI-SLV")
    before = float(silver.price if silver.price is not None else aviator.price)
    path = f"/v3/catalog/products/{aviator.id}/variants/{silver.id}"
    await change(live, "PUT", path, {"price": before + 5})
    [(changed, previous)] = [
        (e.payload["changed"], e.payload["previous"])
        for e in live.events("bigcommerce.variant.updated")
        if e.payload["variant"]["id"] == silver.id
    ]
    assert changed == ["price"] and previous == {"price": before}


async def test_order_and_customer_updates_carry_the_previous_values(live: Live) -> None:
    order_id = min(live.sim_store.orders)
    await change(live, "PUT", f"/v2/orders/{order_id}", {"staff_notes": "first"})
    await change(live, "PUT", f"/v2/orders/{order_id}", {"staff_notes": "second"})
    notes = [u for u in updates(live, "bigcommerce.order.updated") if "staff_notes" in u[0]]
    assert notes[-1] == (["staff_notes"], {"staff_notes": "first"})
    customer = min(live.sim_store.customers.values(), key=lambda c: c.id)
    group = customer.customer_group_id
    await change(live, "PUT", f"/v2/customers/{customer.id}", {"customer_group_id": group + 1})
    await change(live, "PUT", f"/v2/customers/{customer.id}", {"customer_group_id": group})
    assert updates(live, "bigcommerce.customer.updated")[-1] == (
        ["customer_group_id"],
        {"customer_group_id": group + 1},
    )
