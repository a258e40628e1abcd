"""Stock events around a backorder, end to end over real HTTP (the live rig): tracking is off
while a product is on backorder, yet its restock fires ``bigcommerce.product.back_in_stock``
once shoppers can buy from stock again, and a recipe that unassigns on it agrees with the
automatic restock (docs/backorders.md, "Restock")."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from engine.store.models import RunRow
from tests.connectors.backorder.live import live
from tests.fakes import Recorder

SOLD_OUT = """\
id: sold-out-to-backorder
name: Sold-out products go on backorder
trigger:
  type: bigcommerce.product.out_of_stock
  with: {product_ids: [PID]}
actions:
  - use: backorder.assign
    with: {product_id: "{{ product.id }}", limit: 10, message: "Back soon"}
"""
BACK = """\
id: back-in-stock
name: End the backorder and tell the waiting list when stock is back
trigger:
  type: bigcommerce.product.back_in_stock
actions:
  - id: end
    use: backorder.unassign
    with: {product_id: "{{ product.id }}"}
  - use: test.record
    with: {message: "{{ product.name }} back: {{ previous }} -> {{ current }}"}
"""


async def test_a_restock_after_a_backorder_fires_back_in_stock(
    tmp_path: Path, recorder: Recorder
) -> None:
    async with live(tmp_path, recorder) as rig:
        cat_eye = next(p for p in rig.store.products.values() if p.name == "Cat Eye Sunglasses")
        rig.load(tmp_path, SOLD_OUT.replace("PID", str(cat_eye.id)))
        back = rig.load(tmp_path, BACK)
        assert (await rig.checkout(cat_eye.id, cat_eye.inventory_level)).status_code == 201
        rig.clock.advance(60)
        await rig.settle()
        assert cat_eye.inventory_tracking == "none"  # on backorder
        for _ in range(2):
            assert (await rig.checkout(cat_eye.id)).status_code == 201
            rig.clock.advance(1)
        await rig.settle()
        assert rig.events("bigcommerce.product.back_in_stock") == []

        await rig.set_stock(cat_eye.id, 10)
        rig.clock.advance(1)
        await rig.settle()
        [restocked] = rig.events("backorder.restocked")
        assert restocked.payload["units_waiting"] == 2
        tracking: str = cat_eye.inventory_tracking  # switched back on by the restock
        assert tracking == "product"
        assert cat_eye.inventory_level == 8  # two of the ten were already sold
        [back_event] = rig.events("bigcommerce.product.back_in_stock")
        assert (back_event.payload["previous"], back_event.payload["current"]) == (0, 8)
        assert back_event.payload["product"]["inventory_tracking"] == "product"
        with rig.engine.db.read_session() as s:
            runs = s.exec(select(RunRow).where(RunRow.recipe_uid == back)).all()
        assert [r.status for r in runs] == ["succeeded"]
        assert [c["message"] for c in recorder.named("test.record")] == [
            "Cat Eye Sunglasses back: 0 -> 8"
        ]
        assert len(rig.events("backorder.unassigned")) == 1  # the restock ended it once


async def test_a_backorder_closed_at_zero_fires_no_back_in_stock(
    tmp_path: Path, recorder: Recorder
) -> None:
    async with live(tmp_path, recorder) as rig:
        cat_eye = next(p for p in rig.store.products.values() if p.name == "Cat Eye Sunglasses")
        rig.load(tmp_path, SOLD_OUT.replace("PID", str(cat_eye.id)).replace("10", "1"))
        assert (await rig.checkout(cat_eye.id, cat_eye.inventory_level)).status_code == 201
        rig.clock.advance(60)
        await rig.settle()
        assert (await rig.checkout(cat_eye.id)).status_code == 201  # uses the limit up
        rig.clock.advance(1)
        await rig.settle()
        assert len(rig.events("backorder.limit_reached")) == 1
        assert cat_eye.inventory_tracking == "product"  # tracking back on, at zero
        assert rig.events("bigcommerce.product.back_in_stock") == []
        assert len(rig.events("bigcommerce.product.out_of_stock")) == 1
