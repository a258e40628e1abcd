"""report.backlog as a recipe step whose output is e-mailed with the CSV attached."""

from __future__ import annotations

from pathlib import Path

from connectors.backorder.actions import AssignParams, assign
from connectors.backorder.config import ClientProvider
from connectors.email import SmtpConfig
from connectors.email.sink import SmtpSink
from engine import Engine
from engine.authoring.loader import load_file
from engine.model.events import NewEvent
from engine.store.db import Database
from tests.connectors.backorder.conftest import Shop
from tests.connectors.backorder.test_ledger import sell

RECIPE = """\
id: morning-backlog
name: The backlog, every morning, to the warehouse
trigger:
  type: test.stock
actions:
  - id: report
    use: report.backlog
    with: {window_days: 7}
  - use: email.send
    with:
      to: [warehouse@shop.example]
      subject: >-
        Backlog: {{ steps.report.count }} orders,
        {{ steps.report.units_backordered }} units on backorder
      text: "{{ steps.report.text }}"
      attachments:
        - filename: "{{ steps.report.csv_filename }}"
          content_type: text/csv
          content: "{{ steps.report.csv }}"
"""


async def test_recipe_mails_the_report(engine: Engine, shop: Shop, tmp_path: Path) -> None:
    pid = shop.product_id("Leather Card Holder")
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10))
    await sell(shop, pid, 4)
    async with SmtpSink(clock=shop.clock) as sink:
        engine.services.add(shop.service.db, Database)
        engine.services.add(shop.clients, ClientProvider)
        engine.services.add(SmtpConfig(port=sink.port, sender="sous@shop.example"), SmtpConfig)
        path = tmp_path / "recipe.yaml"
        path.write_text(RECIPE)
        loaded = load_file(path, engine.registry)
        assert loaded.errors == []
        engine.refresh(
            engine.recipes.create("default", loaded.recipes[0][1].document(), source=str(path))
        )
        await engine.ingest(
            NewEvent(type="test.stock", payload={"product": {"id": pid}}, store=shop.hash)
        )
        await engine.drain()
        [mail] = await sink.wait_for(1)
    assert mail.subject == "Backlog: 3 orders, 4 units on backorder"
    assert mail.text is not None
    assert "Leather Card Holder" in mail.text
    [attachment] = mail.attachments
    assert attachment.filename == f"backlog-{shop.hash}-2026-11-27.csv"
    assert attachment.data.decode().splitlines()[0].startswith("order_id,status_id,status,")
    assert len(attachment.data.decode().splitlines()) == 4
