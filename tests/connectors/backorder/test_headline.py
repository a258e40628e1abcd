"""The headline scenario, end to end over real HTTP.

The store simulator and Sous's webhook endpoint each run under uvicorn on a loopback port (the
BigCommerce connector's live rig): shoppers check out through the simulator, its webhooks reach
Sous, the BigCommerce connector turns them into events, and the backorder connector reacts.

A best-seller sells out → a recipe puts it on backorder (limit 50, ETA in the message) and
e-mails the warehouse → 50 backorders are accepted → the 51st is refused because backorder
switched itself off (``backorder.limit_reached``, another e-mail) → a restock ends it: the
product is as it was, and ``backorder.restocked`` lists the 50 waiting orders oldest first.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import col, select

from connectors.backorder.models import BackorderLineRow
from connectors.email import SmtpConfig
from connectors.email.sink import SmtpSink
from engine.store.models import MatchRow, RunRow
from tests.connectors.backorder.live import Rig, live
from tests.fakes import Recorder

SOLD_OUT = """\
id: sold-out-to-backorder
name: Sold-out best-sellers go on backorder, and the warehouse hears of it
trigger:
  type: bigcommerce.product.out_of_stock
  with: {product_ids: [PID]}
conditions:
  - {"==": [{"var": "product.inventory_tracking"}, "product"]}
actions:
  - id: hold
    use: backorder.assign
    with:
      product_id: "{{ product.id }}"
      limit: 50
      back_in_stock_date: "{{ (now() + days(14)) | date }}"
      message: "Back soon: ships by %%DATE%%"
  - id: tell
    use: email.send
    with:
      to: [warehouse@shop.example]
      subject: "{{ product.name }} sold out; backorder open (limit {{ steps.hold.limit }})"
      text: "Shoppers now read: {{ steps.hold.message_rendered }} (ETA {{ steps.hold.eta }})"
"""

FULL = """\
id: backorder-full
name: Tell the warehouse when a backorder is full
trigger:
  type: backorder.limit_reached
actions:
  - use: email.send
    with:
      to: [warehouse@shop.example]
      subject: "{{ product.name }}: backorder full ({{ backorder.units_backordered }} units)"
      text: "Backorder switched off after order {{ order_id }}."
"""

RESTOCKED = """\
id: backorders-to-ship
name: Hand the waiting orders to the warehouse
trigger:
  type: backorder.restocked
actions:
  - use: test.record
    with:
      message: "{{ product.name }}: {{ units_waiting }} units to ship"
      count: "{{ level_after }}"
      data: {orders: "{{ orders }}"}
"""


def lines(rig: Rig) -> list[BackorderLineRow]:
    with rig.engine.db.session() as s:
        query = select(BackorderLineRow).order_by(col(BackorderLineRow.order_id))
        return list(s.exec(query).all())


async def test_sold_out_backorder_limit_and_restock(tmp_path: Path, recorder: Recorder) -> None:
    async with live(tmp_path, recorder) as rig, SmtpSink(clock=rig.clock) as sink:
        smtp = SmtpConfig(port=sink.port, sender="Sous <sous@shop.example>")
        rig.engine.services.add(smtp, SmtpConfig)
        cat_eye = next(p for p in rig.store.products.values() if p.name == "Cat Eye Sunglasses")
        before = await rig.product(cat_eye.id)
        rig.load(tmp_path, SOLD_OUT.replace("PID", str(cat_eye.id)))
        rig.load(tmp_path, FULL)
        rig.load(tmp_path, RESTOCKED)

        # the last units sell: out of stock, so the recipe puts it on backorder
        assert (await rig.checkout(cat_eye.id, cat_eye.inventory_level)).status_code == 201
        rig.clock.advance(60)
        await rig.settle()
        eta = (rig.clock.now() + timedelta(days=14)).date()
        [opened] = await sink.wait_for(1)
        assert opened.subject == "Cat Eye Sunglasses sold out; backorder open (limit 50)"
        assert opened.text is not None
        assert f"Back soon: ships by {eta:%B %d, %Y} (ETA {eta.isoformat()})" in opened.text
        assert (cat_eye.inventory_tracking, cat_eye.availability) == ("none", "preorder")
        assert cat_eye.preorder_message == "Back soon: ships by %%DATE%%"
        assert cat_eye.preorder_release_date is not None
        assert cat_eye.preorder_release_date.date() == eta

        # fifty shoppers order at zero stock
        placed = []
        for _ in range(50):
            response = await rig.checkout(cat_eye.id)
            assert response.status_code == 201, response.text
            placed.append(response.json()["order"]["id"])
            rig.clock.advance(1)
        await rig.settle()
        assert [li.order_id for li in lines(rig)] == placed
        assert sorted(e.payload["order"]["id"] for e in rig.events("backorder.ordered")) == placed
        [full] = rig.events("backorder.limit_reached")
        assert full.payload["order_id"] in placed  # the one whose units used the limit up
        assert full.payload["backorder"]["limit_left"] == 0

        # the fifty-first is refused: backorder switched itself off
        refused = await rig.checkout(cat_eye.id)
        assert refused.status_code == 409
        assert refused.json()["reason"] == "out_of_stock"
        _, limit_mail = await sink.wait_for(2)
        assert limit_mail.subject == "Cat Eye Sunglasses: backorder full (50 units)"

        # stock comes back: the backorder ends and the waiting orders are listed, oldest first
        await rig.set_stock(cat_eye.id, 80)
        await rig.settle()
        [restocked] = rig.events("backorder.restocked")
        assert [o["order_id"] for o in restocked.payload["orders"]] == placed
        assert restocked.payload["units_waiting"] == 50
        [unassigned] = rig.events("backorder.unassigned")
        assert unassigned.payload["reason"] == "restocked"
        [call] = recorder.named("test.record")
        assert call["message"] == "Cat Eye Sunglasses: 50 units to ship"
        assert [o["order_id"] for o in call["data"]["orders"]] == placed
        after = await rig.product(cat_eye.id)
        for name in (
            "inventory_tracking",
            "availability",
            "preorder_message",
            "preorder_release_date",
            "is_preorder_only",
            "custom_fields",
        ):
            assert after[name] == before[name], name
        assert after["inventory_level"] == 30  # 80 arrived, 50 already sold
        assert call["count"] == 30
        assert {li.status for li in lines(rig)} == {"allocated"}
        assert len(sink.messages) == 2


EVERY_UPDATE = """\
id: backorder-on-every-update
name: On product updated, put it on backorder (a loop waiting to happen)
trigger:
  type: bigcommerce.product.updated
  with: {product_ids: [PID]}
actions:
  - use: backorder.assign
    with:
      product_id: "{{ product.id }}"
      limit: 5
      message: "Back soon (after event {{ event.id }})"
"""


async def test_a_backorder_set_on_product_updated_does_not_trigger_itself(
    tmp_path: Path, recorder: Recorder
) -> None:
    async with live(tmp_path, recorder) as rig:
        holder = next(p for p in rig.store.products.values() if p.name == "Leather Card Holder")
        uid = rig.load(tmp_path, EVERY_UPDATE.replace("PID", str(holder.id)))
        url = f"{rig.sim_url}/stores/{rig.hash}/v3/catalog/products/{holder.id}"
        headers = {"X-Auth-Token": rig.store.access_token}
        changed = await rig.http.put(url, json={"is_featured": True}, headers=headers)
        assert changed.status_code == 200
        rig.clock.advance(1)
        await rig.settle()
        with rig.engine.db.session() as s:
            runs = s.exec(select(RunRow).where(RunRow.recipe_uid == uid)).all()
        assert [(r.status, r.status_reason) for r in runs] == [("succeeded", None)]
        assert holder.availability == "preorder"  # at zero stock: on backorder at once
        updates = rig.events("bigcommerce.product.updated")
        assert len(updates) >= 2  # the merchant's change, then the backorder's own write
        own = updates[-1].caused_by
        assert own is not None and own["run_id"] == runs[0].id
        with rig.engine.db.session() as s:
            decisions = s.exec(select(MatchRow).where(MatchRow.event_id == updates[-1].id)).all()
        assert [d.matched for d in decisions] == [False]
        assert "own write" in str(decisions[0].reason)
