"""Restock ends a backorder (waiting orders oldest first); a back-in-stock date switches it off."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.backorder.actions import (
    AssignParams,
    Target,
    UpdateParams,
    assign,
    unassign,
    update,
)
from connectors.backorder.handlers import check_dates, on_stock, reconcile
from connectors.bigcommerce.errors import ServerError
from engine.errors import RetryableError
from tests.connectors.backorder.conftest import Shop
from tests.connectors.backorder.test_ledger import sell

CARD = "Leather Card Holder"


async def test_restock_lists_waiting_orders_oldest_first_and_restores(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    before = await shop.product(pid)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10, message="Soon"))
    orders = [await sell(shop, pid, q) for q in (2, 1, 3)]
    await shop.set_stock(pid, 20)
    done = await on_stock(shop.service, "default", shop.hash, [pid], emit=shop.emit)
    assert done == {pid: "restocked"}
    [restocked] = shop.sent("backorder.restocked")
    assert [o["order_id"] for o in restocked["orders"]] == orders
    assert [o["quantity"] for o in restocked["orders"]] == [2, 1, 3]
    assert (restocked["level_before"], restocked["level_after"], restocked["units_waiting"]) == (
        20,
        14,
        6,
    )
    [gone] = shop.sent("backorder.unassigned")
    assert gone["reason"] == "restocked"
    after = await shop.product(pid)
    assert after["inventory_level"] == 14  # the six waiting units are set aside
    for name in (
        "inventory_tracking",
        "availability",
        "preorder_message",
        "preorder_release_date",
        "custom_fields",
    ):
        assert after[name] == before[name], name
    again = await on_stock(shop.service, "default", shop.hash, [pid], emit=shop.emit)
    assert again == {pid: "unchanged"}
    assert len(shop.sent("backorder.restocked")) == 1


async def test_restock_without_reserving_keeps_the_level(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10, reserve_on_restock=False))
    await sell(shop, pid, 2)
    await shop.set_stock(pid, 5)
    await on_stock(shop.service, "default", shop.hash, [pid], emit=shop.emit)
    assert (await shop.product(pid))["inventory_level"] == 5


async def test_armed_backorder_switches_on_when_stock_runs_out(shop: Shop) -> None:
    pid = shop.product_id("Cat Eye Sunglasses")
    out = await assign(shop.ctx(), AssignParams(product_id=pid, limit=5))
    assert out.status == "armed"
    assert (await shop.buy(pid, shop.store.products[pid].inventory_level)).status_code == 201
    assert (await shop.buy(pid)).status_code == 409
    shop.clock.advance(60)
    assert await on_stock(shop.service, "default", shop.hash, [pid], emit=shop.emit) == {
        pid: "activated"
    }
    [woke] = shop.sent("backorder.updated")
    assert woke["reason"] == "activated"
    assert woke["backorder"]["status"] == "active"
    assert (await shop.buy(pid)).status_code == 201


async def test_back_in_stock_date_switches_backorder_off(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    when = shop.clock.now().date() + timedelta(days=3)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10, back_in_stock_date=when))
    emit_for = lambda ws: shop.emit  # noqa: E731
    assert await check_dates(shop.service, emit_for=emit_for) == []
    shop.clock.advance(2 * 86400)
    assert await check_dates(shop.service, emit_for=emit_for) == []
    assert (await shop.buy(pid)).status_code == 201
    shop.clock.advance(86400)
    closed = await check_dates(shop.service, emit_for=emit_for)
    assert len(closed) == 1
    [reached] = shop.sent("backorder.back_in_stock_date_reached")
    assert reached["date"] == when.isoformat()
    assert reached["backorder"]["status"] == "closed"
    assert (await shop.buy(pid)).status_code == 409
    assert await check_dates(shop.service, emit_for=emit_for) == []
    # the supplier moves the date: other changes need no new date, a later one reopens it
    target = {"product_id": pid}
    await update(shop.ctx(step="msg"), UpdateParams.model_validate({**target, "message": "Soon"}))
    later = shop.clock.now().date() + timedelta(days=5)
    out = await update(
        shop.ctx(step="date"), UpdateParams.model_validate({**target, "back_in_stock_date": later})
    )
    assert out.status == "active"
    assert out.eta == later
    assert (await shop.buy(pid)).status_code == 201


async def test_poll_notices_restock_of_a_variant(shop: Shop) -> None:
    pid = shop.product_id("Aviator Sunglasses")
    silver = shop.variant_id("SUN-AVI-SLV")
    await assign(shop.ctx(), AssignParams(product_id=pid, variant_id=silver, limit=5))
    order_id = await sell(shop, pid, 2, silver)
    emit_for = lambda ws: shop.emit  # noqa: E731
    assert await reconcile(shop.service, emit_for=emit_for) == {}
    # the product does not track stock while on backorder: this change fires no webhook
    await shop.set_stock(pid, 6, silver)
    report = await reconcile(shop.service, emit_for=emit_for)
    assert report == {shop.hash: {pid: "restocked"}}
    [restocked] = shop.sent("backorder.restocked")
    assert [o["order_id"] for o in restocked["orders"]] == [order_id]
    product = await shop.product(pid)
    assert product["inventory_tracking"] == "variant"
    assert {v["id"]: v["inventory_level"] for v in product["variants"]}[silver] == 4


async def test_unassigning_once_stock_is_back_is_a_restock(shop: Shop) -> None:
    # as a recipe that unassigns on bigcommerce.product.back_in_stock would
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10))
    orders = [await sell(shop, pid, 1) for _ in range(3)]
    await shop.set_stock(pid, 10)
    out = await unassign(shop.ctx(step="end"), Target(product_id=pid))
    assert out.unassigned
    [restocked] = shop.sent("backorder.restocked")
    assert [o["order_id"] for o in restocked["orders"]] == orders
    [gone] = shop.sent("backorder.unassigned")
    assert gone["reason"] == "restocked"
    assert (await shop.product(pid))["inventory_level"] == 7
    assert await on_stock(shop.service, "default", shop.hash, [pid], emit=shop.emit) == {
        pid: "unchanged"
    }
    assert len(shop.sent("backorder.restocked")) == 1


async def test_reconcile_writes_what_drifted(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10))
    client = await shop.clients.client("default", shop.hash)
    await client.update_product(pid, {"availability": "available", "inventory_tracking": "product"})
    emit_for = lambda ws: shop.emit  # noqa: E731
    assert await reconcile(shop.service, emit_for=emit_for) == {shop.hash: {pid: "synced"}}
    product = await shop.product(pid)
    assert (product["availability"], product["inventory_tracking"]) == ("preorder", "none")
    shop.forget_requests()
    assert await reconcile(shop.service, emit_for=emit_for) == {}
    assert [r.method for r in shop.requests()] == ["GET"]  # one batched read, nothing to write


async def test_a_failed_unassign_leaves_it_assigned_for_the_retry(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = shop.product_id(CARD)
    before = await shop.product(pid)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10))
    client = await shop.clients.client("default", shop.hash)
    monkeypatch.setattr(client, "update_product", refused)
    with pytest.raises(RetryableError):
        await unassign(shop.ctx(step="end"), Target(product_id=pid))
    monkeypatch.undo()
    assert (await shop.product(pid))["availability"] == "preorder"
    assert shop.sent("backorder.unassigned") == []
    retried = await unassign(shop.ctx(step="end"), Target(product_id=pid))
    assert retried.unassigned
    after = await shop.product(pid)
    for name in ("inventory_tracking", "availability", "preorder_message", "custom_fields"):
        assert after[name] == before[name], name
    assert len(shop.sent("backorder.unassigned")) == 1


async def test_a_switch_off_that_failed_is_made_by_the_check(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=1))
    client = await shop.clients.client("default", shop.hash)
    monkeypatch.setattr(client, "update_product", refused)
    with pytest.raises(RetryableError):
        await sell(shop, pid)
    monkeypatch.undo()
    assert len(shop.sent("backorder.limit_reached")) == 1  # sent before the store write
    assert (await shop.buy(pid)).status_code == 201  # the store still sells
    emit_for = lambda ws: shop.emit  # noqa: E731
    assert await reconcile(shop.service, emit_for=emit_for) == {shop.hash: {pid: "synced"}}
    assert (await shop.buy(pid)).status_code == 409
    assert await reconcile(shop.service, emit_for=emit_for) == {}
    assert len(shop.sent("backorder.limit_reached")) == 1


async def refused(*args: object, **kwargs: object) -> None:
    raise ServerError("503 from the store", status=503)
