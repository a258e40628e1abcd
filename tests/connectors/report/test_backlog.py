"""The backlog and backorder report, built from the simulator's orders API and the ledger."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from connectors.backorder.actions import AssignParams, assign
from connectors.report.action import BacklogParams, backlog
from connectors.report.backlog import BacklogReport, build_report
from connectors.report.render import orders_csv, text
from tests.connectors.backorder.conftest import Shop
from tests.connectors.backorder.test_ledger import sell

CARD = "Leather Card Holder"


async def report(shop: Shop, window_days: int = 30) -> BacklogReport:
    client = await shop.clients.client("default", shop.hash)
    now = shop.clock.now()
    return await build_report(
        client, shop.service.db, "default", shop.hash, now, window_days=window_days
    )


async def test_seeded_backlog_by_status_and_age(shop: Shop) -> None:
    # the seed has one order per status, a day apart; only Awaiting Payment (7 days old) and
    # Awaiting Fulfillment (1 day) are unfulfilled
    shop.forget_requests()
    found = await report(shop)
    assert [o.status_id for o in found.orders] == [7, 11]
    assert found.count == 2
    assert found.oldest is not None
    assert found.oldest.status == "Awaiting Payment"
    assert found.oldest.age_days == 7
    assert {a.label: a.count for a in found.by_age} == {
        "<1d": 0,
        "1-3d": 1,
        "3-7d": 0,
        "7-14d": 1,
        ">14d": 0,
    }
    assert found.value == sum(o.total for o in found.orders)
    assert found.currency == "USD"
    # one count, then one page per status that has orders
    assert [(r.method, r.path) for r in shop.requests()] == [
        ("GET", "/v2/orders/count"),
        ("GET", "/v2/orders"),
        ("GET", "/v2/orders"),
    ]


async def test_pages_through_large_statuses_with_few_requests(shop: Shop) -> None:
    burst = await shop.http.post(
        f"{shop.url}/_sim/stores/{shop.hash}/burst",
        json={"orders": 260, "product_ids": [shop.product_id("Classic Canvas Tote")]},
    )
    assert burst.json()["orders_placed"] == 260
    shop.forget_requests()
    found = await report(shop)
    assert found.count == 262
    assert found.requests == 4  # count + 2 pages of Awaiting Fulfillment + 1 of Awaiting Payment
    assert len(shop.requests()) == 4
    assert [s.count for s in found.by_status] == [261, 1]


async def test_backorders_and_demand_from_the_ledger(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    when = shop.clock.now().date() + timedelta(days=10)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10, back_in_stock_date=when))
    first = await sell(shop, pid, 2)
    shop.clock.advance(2 * 86400)
    second = await sell(shop, pid, 1)
    third = await sell(shop, pid, 3)
    client = await shop.clients.client("default", shop.hash)
    await client.update_order(third, {"status_id": 9})  # packed, still unshipped
    await client.update_order(second, {"status_id": 2})  # shipped: out of the backlog
    shop.clock.advance(3600)
    found = await report(shop)
    assert {o.id: o.backordered_units for o in found.orders if o.backordered_units} == {
        first: 2,
        third: 3,
    }
    [product] = found.backorders
    assert (product.product_id, product.name, product.units_waiting, product.orders) == (
        pid,
        CARD,
        5,
        2,
    )
    assert (product.limit, product.limit_left, product.status) == (10, 4, "active")
    assert product.oldest_order_id == first
    assert product.oldest_age_days > 2
    assert product.eta == when.isoformat()
    assert found.units_backordered == 5
    [wanted] = found.demand
    assert (wanted.product_id, wanted.units, wanted.orders) == (pid, 6, 3)
    narrow = await report(shop, window_days=1)
    assert [(d.units, d.orders) for d in narrow.demand] == [(4, 2)]


async def test_text_and_csv(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10, incoming_quantity=4))
    order_id = await sell(shop, pid, 2)
    found = await report(shop)
    body = text(found)
    assert "Unfulfilled orders: 3, worth" in body
    assert "Awaiting Fulfillment" in body
    assert CARD in body
    rows = list(csv.DictReader(io.StringIO(orders_csv(found))))
    assert [int(r["order_id"]) for r in rows] == [o.id for o in found.orders]
    assert {r["order_id"]: r["backordered_units"] for r in rows}[str(order_id)] == "2"
    assert rows[0]["status"] == "Awaiting Payment"
    assert orders_csv(found, max_rows=1).count("\r\n") == 2


async def test_the_action_output_is_ready_to_mail(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10))
    await sell(shop, pid, 1)
    out = await backlog(shop.ctx(step="report"), BacklogParams(max_rows=2))
    assert out.count == 3
    assert out.units_backordered == 1
    assert out.products_backordered == 1
    assert out.csv_filename == f"backlog-{shop.hash}-{shop.clock.now():%Y-%m-%d}.csv"
    assert out.csv_truncated
    assert out.csv.startswith("order_id,status_id,status,")
    assert out.backorders_csv.splitlines()[1].startswith(
        f"{pid},,{CARD},ACC-CARD,active,1,0,1,10,9,"
    )
    assert out.text.startswith(f"Backlog of store {shop.hash}")
    assert out.requests == 3
