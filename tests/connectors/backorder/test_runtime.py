"""The runtime on an engine: reactions to order events as jobs, and the periodic check on the
engine's (manual) clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

from sqlmodel import select

from connectors.backorder import BackorderRuntime, follow_ups
from connectors.backorder.actions import AssignParams, assign
from engine import Engine
from engine.clock import ManualClock
from engine.model.events import NewEvent
from engine.store.models import EventRow
from tests.connectors.backorder.conftest import Shop

CARD = "Leather Card Holder"


async def until(check: Callable[[], bool], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def inbox(engine: Engine, type_: str) -> list[EventRow]:
    with engine.db.session() as s:
        return list(s.exec(select(EventRow).where(EventRow.type == type_)).all())


async def order_event(shop: Shop, pid: int) -> NewEvent:
    response = await shop.buy(pid)
    order = await shop.order_event(int(response.json()["order"]["id"]))
    return NewEvent(
        type="bigcommerce.order.created", payload={"order": order}, store=shop.hash,
        source="webhook", dedup_key=f"order:{order['id']}:created",
    )  # fmt: skip


async def test_order_events_reach_the_ledger_through_jobs(engine: Engine, shop: Shop) -> None:
    runtime = BackorderRuntime(engine, shop.service)
    runtime.install()
    await assign(shop.ctx(), AssignParams(product_id=shop.product_id(CARD), limit=1))
    shop.clock.advance(60)
    await engine.ingest(await order_event(shop, shop.product_id(CARD)))
    await runtime.settle()
    await engine.drain()
    [ordered] = inbox(engine, "backorder.ordered")
    assert ordered.payload["units_backordered"] == 1
    [full] = inbox(engine, "backorder.limit_reached")
    assert full.source == "backorder"
    assert (await shop.buy(shop.product_id(CARD))).status_code == 409
    assert runtime.counts["orders"] == 1
    await runtime.stop()


async def test_follow_up_jobs_without_the_listener(engine: Engine, shop: Shop) -> None:
    runtime = BackorderRuntime(engine, shop.service)
    runtime.install(listen=False)
    await assign(shop.ctx(), AssignParams(product_id=shop.product_id(CARD), limit=5))
    shop.clock.advance(60)
    new = await order_event(shop, shop.product_id(CARD))
    await engine.ingest(new, follow_up=follow_ups(new.type))
    await engine.drain()
    assert len(inbox(engine, "backorder.ordered")) == 1
    assert follow_ups("bigcommerce.customer.created") == ()


async def test_periodic_check_runs_on_the_engine_clock(
    engine: Engine, shop: Shop, clock: ManualClock
) -> None:
    runtime = BackorderRuntime(engine, shop.service)
    runtime.install()
    when = clock.now().date() + timedelta(days=1)
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=5, back_in_stock_date=when))
    sleeping = clock.sleepers
    runtime.start()
    await until(lambda: clock.sleepers > sleeping)
    clock.advance(shop.service.settings.check_interval)
    await until(lambda: runtime.counts.get("ticks", 0) == 1)
    assert inbox(engine, "backorder.back_in_stock_date_reached") == []
    clock.advance(86400)
    await until(lambda: runtime.counts.get("ticks", 0) == 2)
    await engine.drain()
    [reached] = inbox(engine, "backorder.back_in_stock_date_reached")
    assert reached.payload["date"] == when.isoformat()
    assert (await shop.product(pid))["availability"] == "available"
    await runtime.stop()
