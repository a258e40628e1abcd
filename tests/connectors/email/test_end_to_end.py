"""email.send as a recipe step, run by the engine, delivered to the sink."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from connectors.core import CONNECTOR as CORE
from connectors.email import CONNECTOR as EMAIL, SmtpConfig
from connectors.email.sink import SmtpSink
from engine import Engine
from engine.authoring.loader import load_file
from engine.model.events import NewEvent
from engine.registry import Registry
from engine.store.db import Database
from engine.store.models import RunRow, StepRow
from tests.fakes import Recorder, recording_connector

RECIPE = """\
id: sold-out-mail
name: Mail staff when a product sells out
trigger:
  type: test.stock
actions:
  - id: mail
    use: email.send
    with:
      to: "{{ product.buyer }}"
      cc: []
      subject: "{{ product.name }} sold out"
      text: "{{ product.name }} (#{{ product.id }}) is out of stock."
      html: "<p>{{ product.name }} is out of stock.</p>"
      attachments:
        - filename: backlog.csv
          content_type: text/csv
          content: "sku,qty\\n{{ product.sku }},0\\n"
"""


@pytest.fixture
def registry(recorder: Recorder) -> Registry:
    return Registry([CORE, EMAIL, recording_connector(recorder)])


async def test_recipe_step_sends_mail(
    engine: Engine, db: Database, sink: SmtpSink, smtp: SmtpConfig, tmp_path: Path
) -> None:
    engine.services.add(db, Database)
    engine.services.add(smtp, SmtpConfig)
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE)
    loaded = load_file(path, engine.registry)
    assert loaded.errors == []
    stored = engine.recipes.create("default", loaded.recipes[0][1].document(), source=str(path))
    engine.refresh(stored)

    payload = {
        "product": {
            "id": 77,
            "name": "Cat Eye Sunglasses",
            "sku": "CAT-EYE-01",
            "buyer": "buyer@shop.example",
        }
    }
    result = await engine.ingest(NewEvent(type="test.stock", payload=payload))
    await engine.drain()

    [msg] = await sink.wait_for(1)
    assert msg.subject == "Cat Eye Sunglasses sold out"
    assert msg.rcpt_tos == ["buyer@shop.example"]
    assert msg.text is not None
    assert "(#77)" in msg.text
    assert msg.attachments[0].data.decode().replace("\r\n", "\n") == "sku,qty\nCAT-EYE-01,0\n"
    with db.session() as s:
        run = s.get(RunRow, result.runs[0])
        step = s.exec(select(StepRow).where(StepRow.run_id == result.runs[0])).one()
    assert run is not None
    assert run.status == "succeeded"
    assert step.output is not None
    assert step.output["message_id"] == msg.message_id
    assert step.output["accepted"] == ["buyer@shop.example"]
    assert step.output["already_sent"] is False
