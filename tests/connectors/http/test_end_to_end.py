"""http.request as a recipe step, with a vault secret in a header: sent, but never traced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.core import CONNECTOR as CORE
from connectors.http import CONNECTOR as HTTP, OutboundPolicy
from engine import Engine
from engine.authoring.loader import load_file
from engine.clock import ManualClock
from engine.model.events import NewEvent
from engine.registry import Registry
from engine.store.db import Database
from engine.store.models import RunRow, StepRow
from engine.store.vault import Cipher, Vault
from tests.connectors.http.conftest import LocalServer
from tests.fakes import Recorder, recording_connector

TOKEN = "erp-live-7c1f2a9b"

RECIPE = """\
id: push-stock-to-erp
name: Tell the ERP when a product sells out
trigger:
  type: test.stock
actions:
  - id: push
    use: http.request
    with:
      method: POST
      url: "{{ product.erp_url }}"
      headers:
        Authorization: "Bearer {{ secrets.ERP_TOKEN }}"
        X-Erp-Signature: "sig-{{ secrets.ERP_TOKEN }}"
      json:
        sku: "{{ product.sku }}"
        qty: "{{ product.inventory_level }}"
  - id: note
    use: test.record
    with:
      message: "ERP answered {{ steps.push.status }} for {{ steps.push.json.body }}"
"""


@pytest.fixture
def registry(recorder: Recorder) -> Registry:
    return Registry([CORE, HTTP, recording_connector(recorder)])


async def test_secret_header_is_sent_and_masked_in_the_trace(
    engine: Engine,
    db: Database,
    clock: ManualClock,
    server: LocalServer,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    engine.services.add(OutboundPolicy(allow_hosts=("127.0.0.1",)), OutboundPolicy)
    vault = Vault(db, Cipher("test-key"), clock)
    vault.put("default", "ERP_TOKEN", TOKEN)
    engine.services.add(vault, Vault)
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE)
    loaded = load_file(path, engine.registry)
    assert loaded.errors == []
    stored = engine.recipes.create("default", loaded.recipes[0][1].document(), source=str(path))
    engine.refresh(stored)

    product = {"sku": "CAT-EYE-01", "inventory_level": 0, "erp_url": f"{server.base}/echo"}
    result = await engine.ingest(NewEvent(type="test.stock", payload={"product": product}))
    await engine.drain()

    [seen] = server.seen
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["x-erp-signature"] == f"sig-{TOKEN}"
    assert json.loads(seen.body) == {"sku": "CAT-EYE-01", "qty": 0}
    with db.session() as s:
        run = s.get(RunRow, result.runs[0])
        step = s.get(StepRow, (result.runs[0], 0))
    assert run is not None
    assert run.status == "succeeded"
    assert step is not None
    assert step.input is not None
    assert step.input["headers"] == {"Authorization": "***", "X-Erp-Signature": "sig-***"}
    assert step.output is not None
    assert step.output["status"] == 200
    assert TOKEN not in json.dumps(step.input)
    assert TOKEN not in json.dumps(step.output)  # the echo of the headers is masked too
    assert step.output["json"]["headers"]["x-erp-signature"] == "sig-***"
    assert (
        recorder.named("test.record")[0]["message"]
        == 'ERP answered 200 for {"sku":"CAT-EYE-01","qty":0}'
    )
