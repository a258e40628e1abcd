"""Test runs through the engine with real connectors: an HTTP GET (a read) is made and its
answer feeds the next step; an HTTP POST, an e-mail, a recorded write and a custom event are
recorded as ``would_do`` and never reach the server, the SMTP sink, the recorder or the inbox;
a wait ends at once. A live run of the same recipe makes them all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import col, select

from connectors.email import SmtpConfig
from connectors.email.sink import SmtpSink
from connectors.http import OutboundPolicy
from engine import Database, Engine, NewEvent
from engine.clock import ManualClock
from engine.ingest.inbox import received
from engine.store.models import EventRow, RunRow, StepRow
from tests.connectors.http.conftest import LocalServer
from tests.fakes import Recorder

STEPS: list[dict[str, Any]] = [
    {"id": "look", "use": "http.request", "with": {"url": "{{ product.api }}/json"}},
    {
        "id": "count",
        "use": "core.set",
        "with": {"n": "{{ steps.look.json['items'] | length }}"},
    },
    {
        "id": "push",
        "use": "http.request",
        "with": {"method": "POST", "url": "{{ product.api }}/echo", "json": {"n": 1}},
    },
    {
        "id": "mail",
        "use": "email.send",
        "with": {
            "to": "staff@shop.example",
            "subject": "{{ steps.count.n }} items",
            "text": "x",
        },
    },
    {"id": "note", "use": "test.record", "with": {"message": "noted"}},
    {"id": "tell", "use": "core.emit", "with": {"name": "told"}},
    {"id": "pause", "use": "core.wait", "with": {"for": "3d"}},
]


@pytest.fixture
async def sink(clock: ManualClock) -> AsyncIterator[SmtpSink]:
    async with SmtpSink(clock=clock) as running:
        yield running


@pytest.fixture
def shop(engine: Engine, sink: SmtpSink, server: LocalServer) -> str:
    engine.services.add(OutboundPolicy(allow_hosts=("127.0.0.1",)), OutboundPolicy)
    engine.services.add(SmtpConfig(port=sink.port, sender="sous@shop.example"), SmtpConfig)
    engine.services.add(engine.db, Database)
    stored = engine.recipes.create(
        "default",
        {"id": "tell-all", "name": "Tell all", "trigger": {"type": "test.stock"}, "actions": STEPS},
    )
    engine.refresh(stored)
    return server.base


def trace(engine: Engine, run_id: str) -> tuple[RunRow, list[StepRow]]:
    with engine.db.session() as s:
        run = s.get(RunRow, run_id)
        assert run is not None
        steps = s.exec(
            select(StepRow).where(StepRow.run_id == run_id).order_by(col(StepRow.index))
        ).all()
        return run, list(steps)


def told(engine: Engine) -> int:
    with engine.db.session() as s:
        return len(s.exec(select(EventRow).where(EventRow.type == "custom.told")).all())


async def test_a_test_run_makes_its_reads_and_records_its_writes(
    engine: Engine, shop: str, server: LocalServer, sink: SmtpSink, recorder: Recorder
) -> None:
    event = NewEvent(type="test.stock", payload={"product": {"id": 1, "api": shop}})
    started = await engine.test_run("default", "tell-all", received(event, engine.clock.now()))
    assert started.matched and started.run_id is not None
    await engine.drain()
    run, steps = trace(engine, started.run_id)
    assert run.status == "succeeded", (run.status_reason, [(s.step_id, s.error) for s in steps])
    assert run.context == {"mode": "test"}
    assert [(s.step_id, s.status) for s in steps] == [
        ("look", "succeeded"),
        ("count", "succeeded"),
        ("push", "would_do"),
        ("mail", "would_do"),
        ("note", "would_do"),
        ("tell", "would_do"),
        ("pause", "would_do"),
    ]
    assert [seen.method for seen in server.seen] == ["GET"]  # the read, and only it
    assert sink.messages == [] and recorder.calls == [] and told(engine) == 0
    mail = steps[3]
    assert mail.input is not None and mail.input["subject"] == "2 items"
    assert mail.output == {
        "would_do": "sends an email to the given recipients",
        "action": "email.send",
        "with": mail.input,
    }
    assert steps[6].output is not None and "would_wait_until" in steps[6].output


async def test_the_same_recipe_live_makes_every_write(
    engine: Engine, shop: str, server: LocalServer, sink: SmtpSink, recorder: Recorder,
    clock: ManualClock,
) -> None:  # fmt: skip
    result = await engine.ingest(
        NewEvent(type="test.stock", payload={"product": {"id": 1, "api": shop}})
    )
    await engine.drain()
    run, steps = trace(engine, result.runs[0])
    assert (run.status, steps[-1].status) == ("waiting", "waiting")
    assert [seen.method for seen in server.seen] == ["GET", "POST"]
    assert len(sink.messages) == 1 and len(recorder.calls) == 1 and told(engine) == 1


async def test_a_test_run_the_conditions_refuse_stores_nothing(engine: Engine, shop: str) -> None:
    stored = engine.recipes.get("default", "tell-all")
    document = {**stored.recipe.document(), "conditions": [{"==": [{"var": "product.id"}, 2]}]}
    engine.refresh(engine.recipes.update("default", "tell-all", document, stored.version))
    event = received(
        NewEvent(type="test.stock", payload={"product": {"id": 1}}), engine.clock.now()
    )
    before = told(engine), len(trace_all(engine))
    started = await engine.test_run("default", "tell-all", event)
    assert (started.matched, started.stage, started.run_id) == (False, "conditions", None)
    assert started.reason is not None and "product.id" in started.reason["message"]
    assert (told(engine), len(trace_all(engine))) == before


def trace_all(engine: Engine) -> list[RunRow]:
    with engine.db.session() as s:
        return list(s.exec(select(RunRow)).all())
