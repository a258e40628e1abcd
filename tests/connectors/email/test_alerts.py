"""Alerts without a recipe, through the engine and a real SMTP sink: the first failure of a
recipe at once, later ones in one digest per window, auto-disable told the same way, an SMTP
server that is down at first, and ``sous.run.failed`` for recipes that want it."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.email import SmtpConfig
from connectors.email.alerts import AlertMailer
from connectors.email.sink import SmtpSink
from engine import Engine, NewEvent
from engine.clock import ManualClock
from tests.connectors.email.conftest import DEFERRED
from tests.fakes import Recorder

STAFF = "staff@shop.example"
FAILING: dict[str, Any] = {
    "id": "erp-sync",
    "name": "Sync stock to the ERP",
    "trigger": {"type": "test.stock"},
    "actions": [
        {"id": "note", "use": "test.record", "with": {"message": "product {{ product.id }}"}},
        {"id": "push", "use": "test.flaky", "with": {"mode": "permanent"}},
    ],
    "auto_disable": False,
}


class Address:
    """The workspace's alert address, as the composition root would answer it."""

    def __init__(self, value: str | None = STAFF) -> None:
        self.value = value
        self.asked: list[str] = []

    async def __call__(self, workspace: str) -> str | None:
        self.asked.append(workspace)
        return self.value


@pytest.fixture
def address() -> Address:
    return Address()


@pytest.fixture
def mailer(engine: Engine, smtp: SmtpConfig, address: Address) -> AlertMailer:
    engine.services.add(smtp, SmtpConfig)
    engine.links = "https://sous.example"
    found = AlertMailer(engine, address)
    found.install()
    return found


def saved(engine: Engine, document: dict[str, Any]) -> str:
    stored = engine.recipes.create("default", document)
    engine.refresh(stored)
    return stored.uid


async def fail_once(engine: Engine, recorder: Recorder, product: int = 1) -> str:
    recorder.failures["push"] = 1
    result = await engine.ingest(NewEvent(type="test.stock", payload={"product": {"id": product}}))
    await engine.drain()
    return result.runs[0]


async def test_the_first_failure_is_mailed_at_once_and_the_next_ones_in_a_digest(
    engine: Engine, recorder: Recorder, sink: SmtpSink, clock: ManualClock, mailer: AlertMailer
) -> None:
    saved(engine, FAILING)
    first = await fail_once(engine, recorder)
    [message] = await sink.wait_for(1)
    assert message.to == [STAFF]
    assert message.subject == "Sous: “Sync stock to the ERP” failed at step push"
    assert message.text is not None
    assert "Error: the remote side refused it" in message.text
    assert f"https://sous.example/console/runs/{first}" in message.text
    for n in range(3):  # within the hour: held back, counted
        clock.advance(60)
        await fail_once(engine, recorder, product=10 + n)
    assert len(sink.messages) == 1
    clock.advance(3600)
    await engine.drain()
    messages = await sink.wait_for(2)
    digest = messages[1]
    assert digest.subject == "Sous: “Sync stock to the ERP” failed 3 more time(s)"
    assert digest.text is not None
    assert digest.text.count("step push (test.flaky): the remote side refused it") == 3
    clock.advance(30)
    await fail_once(engine, recorder)  # within the hour after the digest: held back again
    assert len(sink.messages) == 2
    clock.advance(7200)
    await engine.drain()  # its digest
    clock.advance(7200)
    await engine.drain()
    await fail_once(engine, recorder)  # quiet for longer than the window: at once again
    messages = await sink.wait_for(4)
    assert "failed 1 more time(s)" in messages[2].subject
    assert messages[3].subject.endswith("failed at step push")


async def test_auto_disable_tells_the_alert_address(
    engine: Engine, recorder: Recorder, sink: SmtpSink, mailer: AlertMailer
) -> None:
    rule = {"min_runs": 2, "failure_share": 0.5, "window": "1h"}
    saved(engine, {**FAILING, "auto_disable": rule})
    await fail_once(engine, recorder)
    await fail_once(engine, recorder)
    await engine.drain()
    messages = await sink.wait_for(2)
    subjects = [m.subject for m in messages]
    assert "Sous switched off “Sync stock to the ERP”" in subjects
    notice = next(m for m in messages if m.subject.startswith("Sous switched off"))
    assert notice.text is not None
    assert "Why: auto-disabled: 2 of the last 2 runs within 1h failed" in notice.text
    assert "https://sous.example/console/recipes/erp-sync" in notice.text


async def test_an_smtp_server_refusing_for_now_gets_the_alert_later_once(
    engine: Engine,
    recorder: Recorder,
    sink: SmtpSink,
    clock: ManualClock,
    mailer: AlertMailer,
    address: Address,
) -> None:
    saved(engine, FAILING)
    address.value = DEFERRED  # the sink answers 451 for it: try again later
    await fail_once(engine, recorder)
    assert sink.messages == []
    address.value = STAFF
    clock.advance(60)
    await engine.drain()
    [message] = await sink.wait_for(1)
    assert message.subject.endswith("failed at step push")
    clock.advance(60)
    await fail_once(engine, recorder)  # the alert counted as sent: this one waits for a digest
    clock.advance(600)
    await engine.drain()
    assert len(sink.messages) == 1


async def test_without_an_address_nothing_is_sent_and_nothing_waits(
    engine: Engine, recorder: Recorder, sink: SmtpSink, mailer: AlertMailer, address: Address
) -> None:
    saved(engine, FAILING)
    address.value = None
    await fail_once(engine, recorder)
    assert address.asked == ["default"]
    assert sink.messages == []
    assert engine.queue.depth() == 0


async def test_recipes_on_sous_run_failed_hear_of_it_but_never_of_their_own_failure(
    engine: Engine, recorder: Recorder
) -> None:
    uid = saved(engine, FAILING)
    listener = {
        "id": "tell-ops",
        "name": "Tell ops",
        "trigger": {"type": "sous.run.failed"},
        "actions": [
            {
                "id": "say",
                "use": "test.record",
                "with": {"message": "{{ recipe.id }}/{{ step.id }}: {{ error }} {{ run.url }}"},
            },
            {"id": "push", "use": "test.flaky", "with": {"mode": "permanent"}},
        ],
        "auto_disable": False,
    }
    listening = saved(engine, listener)
    recorder.failures["push"] = 2  # the listener's own step fails too
    result = await engine.ingest(NewEvent(type="test.stock", payload={"product": {"id": 1}}))
    await engine.drain()
    said = [c["message"] for c in recorder.named("test.record") if "/" in c["message"]]
    run = result.runs[0]
    assert said == [f"erp-sync/push: the remote side refused it /console/runs/{run}"]
    notices = [e for e in _events(engine) if e["type"] == "sous.run.failed"]
    assert len(notices) == 2  # the recipe's failure, and the listener's own
    own = next(e for e in notices if e["payload"]["recipe"]["id"] == "tell-ops")
    assert own["caused_by"]["recipe_uid"] == listening  # so tell-ops never runs on it
    recipe_failure = next(e for e in notices if e["payload"]["recipe"]["uid"] == uid)
    assert recipe_failure["caused_by"]["run_id"] == run
    assert own["payload"]["step"] == {"id": "push", "use": "test.flaky", "index": 1, "attempts": 1}


def _events(engine: Engine) -> list[dict[str, Any]]:
    from sqlmodel import select

    from engine.store.models import EventRow

    with engine.db.session() as s:
        return [r.model_dump() for r in s.exec(select(EventRow)).all()]
