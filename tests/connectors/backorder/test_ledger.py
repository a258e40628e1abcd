"""The ledger fed by real orders from the simulator's shopper endpoint."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from connectors.backorder.actions import (
    AssignParams,
    Target,
    UpdateParams,
    assign,
    unassign,
    update,
)
from connectors.backorder.handlers import on_order
from connectors.backorder.ledger import read
from connectors.backorder.models import BackorderLineRow
from tests.connectors.backorder.conftest import Shop

CARD = "Leather Card Holder"


async def sell(
    shop: Shop,
    product_id: int,
    quantity: int = 1,
    variant_id: int | None = None,
    customer_id: int = 0,
) -> int:
    """A shopper checks out; Sous hears of the order. Returns the order id."""
    response = await shop.buy(product_id, quantity, variant_id, customer_id)
    assert response.status_code == 201, response.text
    order_id = int(response.json()["order"]["id"])
    await on_order(
        shop.service, "default", shop.hash, await shop.order_event(order_id), emit=shop.emit
    )
    shop.clock.advance(60)
    return order_id


def lines(shop: Shop) -> list[BackorderLineRow]:
    def query(s: Any) -> list[BackorderLineRow]:
        return list(s.exec(select(BackorderLineRow).order_by(col(BackorderLineRow.order_id))).all())

    return read(shop.service.db, query)


async def test_limit_switches_backorder_off(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=3, incoming_quantity=10))
    first = await sell(shop, pid, 2)
    [ordered] = shop.sent("backorder.ordered")
    assert ordered["order"]["id"] == first
    assert ordered["units_backordered"] == 2
    assert ordered["lines"][0]["eta"] == (shop.clock.now().date() + timedelta(days=14)).isoformat()
    second = await sell(shop, pid, 1)
    [reached] = shop.sent("backorder.limit_reached")
    assert reached["order_id"] == second
    assert reached["backorder"]["limit_left"] == 0
    assert reached["backorder"]["status"] == "closed"
    product = await shop.product(pid)
    assert (product["inventory_tracking"], product["availability"]) == ("product", "available")
    assert {f["name"]: f["value"] for f in product["custom_fields"]}["sous_backorder"] == "off"
    refused = await shop.buy(pid)
    assert refused.status_code == 409
    assert refused.json()["reason"] == "out_of_stock"
    assert [(li.order_id, li.backordered, li.status) for li in lines(shop)] == [
        (first, 2, "waiting"),
        (second, 1, "waiting"),
    ]


async def test_same_order_twice_books_once(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=5))
    order_id = await sell(shop, pid, 2)
    await on_order(
        shop.service, "default", shop.hash, await shop.order_event(order_id), emit=shop.emit
    )
    assert [li.quantity for li in lines(shop)] == [2]
    assert len(shop.sent("backorder.ordered")) == 1


async def test_orders_from_before_backorder_are_not_backorders(shop: Shop) -> None:
    pid = shop.product_id("Cat Eye Sunglasses")
    response = await shop.buy(pid, shop.store.products[pid].inventory_level)  # the last units
    order_id = int(response.json()["order"]["id"])
    shop.clock.advance(30)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=5))
    await on_order(
        shop.service, "default", shop.hash, await shop.order_event(order_id), emit=shop.emit
    )
    assert lines(shop) == []
    assert shop.sent("backorder.ordered") == []


async def test_cancel_gives_units_back_and_reopens(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=2))
    first = await sell(shop, pid, 1)
    await sell(shop, pid, 1)
    assert (await shop.buy(pid)).status_code == 409
    client = await shop.clients.client("default", shop.hash)
    await client.update_order(first, {"status_id": 5})
    await on_order(
        shop.service, "default", shop.hash, await shop.order_event(first), emit=shop.emit
    )
    [reopened] = shop.sent("backorder.updated")
    assert reopened["reason"] == "reopened"
    assert reopened["backorder"]["limit_left"] == 1
    assert (await shop.product(pid))["availability"] == "preorder"
    assert (await shop.buy(pid)).status_code == 201
    assert [li.status for li in lines(shop)] == ["released", "waiting"]


async def test_without_release_on_cancel_units_stay_used(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=2, release_on_cancel=False))
    first = await sell(shop, pid, 1)
    client = await shop.clients.client("default", shop.hash)
    await client.update_order(first, {"status_id": 5})
    await on_order(
        shop.service, "default", shop.hash, await shop.order_event(first), emit=shop.emit
    )
    assert [li.status for li in lines(shop)] == ["waiting"]


async def test_partial_refund_gives_back_the_refunded_units(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10))
    order_id = await sell(shop, pid, 3)
    order = await shop.order_event(order_id)
    order["status_id"] = 14
    order["products"][0]["quantity_refunded"] = 2
    await on_order(shop.service, "default", shop.hash, order, emit=shop.emit)
    await on_order(
        shop.service, "default", shop.hash, order, emit=shop.emit
    )  # repeats are harmless
    [line] = lines(shop)
    assert (line.backordered, line.released, line.status) == (3, 2, "waiting")
    out = await assign(shop.ctx(run="again"), AssignParams(product_id=pid, limit=10))
    assert out.units_backordered == 1
    assert out.limit_left == 9


async def test_shipped_orders_leave_the_waiting_list(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10))
    order_id = await sell(shop, pid, 1)
    order = await shop.order_event(order_id)
    await on_order(shop.service, "default", shop.hash, {**order, "status_id": 2}, emit=shop.emit)
    assert [li.status for li in lines(shop)] == ["shipped"]


async def test_units_beyond_incoming_stock_have_no_eta(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10, incoming_quantity=2))
    await sell(shop, pid, 2)
    await sell(shop, pid, 1)
    covered, beyond = shop.sent("backorder.ordered")
    assert covered["lines"][0]["covered"]
    assert covered["eta"] is not None
    assert not beyond["lines"][0]["covered"]
    assert beyond["eta"] is None


async def test_orders_for_other_products_cost_no_requests(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10))
    other = shop.product_id("Classic Canvas Tote")
    response = await shop.buy(other)
    order = await shop.order_event(int(response.json()["order"]["id"]))
    shop.forget_requests()
    booking = await on_order(shop.service, "default", shop.hash, order, emit=shop.emit)
    assert booking.booked == []
    assert shop.requests() == []


async def test_variant_backorder_keeps_sold_out_siblings_closed(shop: Shop) -> None:
    pid = shop.product_id("Aviator Sunglasses")  # tracks by variant: gold 5, silver 0, black 8
    silver, gold, black = (
        shop.variant_id(s) for s in ("SUN-AVI-SLV", "SUN-AVI-GLD", "SUN-AVI-BLK")
    )
    await shop.set_stock(pid, 0, gold)
    out = await assign(shop.ctx(), AssignParams(product_id=pid, variant_id=silver, limit=4))
    assert out.status == "active"
    product = await shop.product(pid)
    flags = {v["id"]: v["purchasing_disabled"] for v in product["variants"]}
    assert product["inventory_tracking"] == "none"
    assert flags == {gold: True, silver: False, black: False}
    assert (await shop.buy(pid, 1, silver)).status_code == 201
    assert (await shop.buy(pid, 1, gold)).status_code == 422
    await unassign(shop.ctx(step="undo"), Target(product_id=pid, variant_id=silver))
    product = await shop.product(pid)
    assert product["inventory_tracking"] == "variant"
    assert all(not v["purchasing_disabled"] for v in product["variants"])


async def test_a_moved_eta_is_told_to_each_waiting_order(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    first_date = shop.clock.now().date() + timedelta(days=7)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10, back_in_stock_date=first_date))
    jane = next(c for c in shop.store.customers.values() if c.first_name == "Jane")
    ava = next(c for c in shop.store.customers.values() if c.first_name == "Ava")
    older = await sell(shop, pid, 2, customer_id=jane.id)
    newer = await sell(shop, pid, 1, customer_id=ava.id)
    await update(shop.ctx("later"), UpdateParams(product_id=pid, limit=20))  # ETA unchanged
    assert shop.sent("backorder.order_eta_changed") == []
    moved = first_date + timedelta(days=5)
    await update(shop.ctx("move"), UpdateParams(product_id=pid, back_in_stock_date=moved))
    told = shop.sent("backorder.order_eta_changed")
    assert [
        (t["order_id"], t["customer"]["email"], t["customer"]["name"], t["units_waiting"])
        for t in told
    ] == [
        (older, "jane.doe@example.com", "Jane Doe", 2),
        (newer, "ava.chen@example.com", "Ava Chen", 1),
    ]
    assert {(t["previous_eta"], t["backorder"]["eta"]) for t in told} == {
        (first_date.isoformat(), moved.isoformat())
    }
    await update(shop.ctx("again"), UpdateParams(product_id=pid, back_in_stock_date=moved))
    assert len(shop.sent("backorder.order_eta_changed")) == 2  # the same date: nobody told twice
