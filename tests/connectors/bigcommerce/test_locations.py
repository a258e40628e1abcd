"""Multi-location inventory and channels against the simulator over real HTTP: the
inventory-location webhooks (inventory-location.mdx) become events that carry the location,
with transitions per location, and recipes filter by location and by an order's channel.
Every request the connector sends is checked against BigCommerce's documents at the end, and
every event's payload against its trigger's model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.connectors.bigcommerce.harness import Live, Servers, live_rig, servers_up
from tests.fakes import Recorder

pytestmark = pytest.mark.asyncio(loop_scope="module")

DOWNTOWN_OUT = """\
id: downtown-out
name: The downtown shop ran out
trigger:
  type: bigcommerce.location.out_of_stock
  with: {location_codes: [DOWNTOWN]}
actions:
  - use: test.record
    with:
      message: "{{ product.name }} out at {{ location.label }} ({{ previous }} -> {{ current }})"
"""
CHANNEL_TWO = """\
id: channel-two
name: Orders from the second storefront
trigger:
  type: bigcommerce.order.created
  with: {channel_ids: [2]}
actions:
  - use: test.record
    with: {message: "order {{ order.id }} on channel {{ order.channel_id }}"}
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


def located(live: Live, name: str) -> list[tuple[int, Any, int]]:
    return [
        (e.payload["location"]["id"], e.payload["previous"], e.payload["current"])
        for e in live.events(f"bigcommerce.location.{name}")
    ]


async def add_location(live: Live) -> dict[str, Any]:
    answer = await live.control(
        "POST", "/locations", json={"code": "DOWNTOWN", "label": "Downtown"}
    )
    await live.settle()
    location: dict[str, Any] = answer.json()
    return location


async def set_stock_at(live: Live, product_id: int, level: int, location_id: int) -> None:
    body = {"product_id": product_id, "level": level, "location_id": location_id}
    await live.control("PUT", "/stock", json=body)
    await live.settle()


def location_events(live: Live) -> list[str]:
    with live.engine.db.session() as s:
        from sqlmodel import col, select

        from engine.store.models import EventRow

        query = select(EventRow.type).where(col(EventRow.type).startswith("bigcommerce.location."))
        return list(s.exec(query).all())


async def test_one_location_gives_no_location_events(live: Live) -> None:
    cat = live.product("Cat Eye Sunglasses")
    await live.set_stock(cat.id, 0)
    await live.settle()
    assert live.events("bigcommerce.product.out_of_stock")
    assert location_events(live) == []


async def test_stock_at_a_second_location_fires_per_location(live: Live, tmp_path: Path) -> None:
    live.load(tmp_path, DOWNTOWN_OUT)
    location = await add_location(live)
    [created] = live.events("bigcommerce.location.created")
    assert created.payload["location"]["code"] == "DOWNTOWN"
    downtown = location["id"]
    cat = live.product("Cat Eye Sunglasses")  # tracked by product
    live.clock.advance(1)
    await set_stock_at(live, cat.id, 5, downtown)  # first seen there: the baseline
    live.clock.advance(1)
    await set_stock_at(live, cat.id, 0, downtown)
    live.clock.advance(1)
    await set_stock_at(live, cat.id, 4, downtown)
    assert located(live, "inventory_changed") == [(downtown, 5, 0), (downtown, 0, 4)]
    assert located(live, "out_of_stock") == [(downtown, 5, 0)]
    assert located(live, "back_in_stock") == [(downtown, 0, 4)]
    [out] = live.events("bigcommerce.location.out_of_stock")
    assert out.payload["product"]["name"] == "Cat Eye Sunglasses"
    assert out.payload["variant"]["id"] and out.payload["location"]["label"] == "Downtown"
    assert [p["message"] for p in live.recorder.named("test.record")] == [
        "Cat Eye Sunglasses out at Downtown (5 -> 0)"
    ]
    # The product's own stock is the total over the locations.
    levels = [(e.payload["previous"], e.payload["current"]) for e in live.events(
        "bigcommerce.product.inventory_changed")][-3:]  # fmt: skip
    start = levels[0][0]
    assert levels == [(start, start + 5), (start + 5, start), (start, start + 4)]


async def test_an_order_emptying_the_default_location_says_so(live: Live, tmp_path: Path) -> None:
    live.load(tmp_path, DOWNTOWN_OUT)
    await add_location(live)
    case = live.product("Bamboo Sunglasses Case")  # tracked by product
    at_default = case.inventory_level
    answer = await live.control(
        "POST", "/orders", json={"lines": [{"product_id": case.id, "quantity": at_default}]}
    )
    assert answer.status_code == 201
    await live.settle()
    assert located(live, "out_of_stock") == [(1, None, 0)]  # BigCommerce said it: no level before
    assert live.recorder.named("test.record") == []  # not the downtown shop


async def test_a_location_changed_is_an_event(live: Live) -> None:
    location = await add_location(live)
    await live.control("PATCH", f"/locations/{location['id']}", json={"enabled": False})
    await live.settle()
    [updated] = live.events("bigcommerce.location.updated")
    assert updated.payload["location"]["enabled"] is False


async def test_recipes_filter_orders_by_channel(live: Live, tmp_path: Path) -> None:
    live.load(tmp_path, CHANNEL_TWO)
    scarf = live.product("Classic Canvas Tote")
    for channel in (1, 2):
        body = {
            "channel_id": channel,
            "products": [{"product_id": scarf.id, "quantity": 1}],
            "billing_address": {"first_name": "A", "last_name": "B", "email": "a@example.com",
                                "zip": "78751", "country_iso2": "US"},
        }  # fmt: skip
        answer = await live.store_api("POST", "/v2/orders", json=body)
        assert answer.status_code == 200, answer.text
    await live.settle()
    orders = live.events("bigcommerce.order.created")
    assert sorted(e.payload["order"]["channel_id"] for e in orders) == [1, 2]
    [run] = live.recorder.named("test.record")
    assert run["message"].endswith("on channel 2")
