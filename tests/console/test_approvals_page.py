"""Approvals in the console: the Approvals page and the run's page decide with CSRF; an e-mailed
link shows a confirmation page on GET and decides on its form's POST, once, before it expires."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from connectors.email import SmtpConfig
from connectors.email.sink import SmtpSink
from engine import ApprovalLinks, Database, Engine
from engine.clock import ManualClock
from engine.model.events import NewEvent
from sous.container import Container
from tests.api.conftest import recipe
from tests.console.conftest import BASE, csrf_of

ASK = {
    "id": "ok",
    "use": "core.approval",
    "with": {
        "title": "Release order {{ order.id }}?",
        "message": "Order {{ order.id }} is worth {{ order.total }}.",
        "timeout": "2d",
        "to": ["manager@shop.example"],
    },
}
AFTER = {"id": "after", "use": "test.record", "with": {"message": "released"}}
LINK = re.compile(r"(https://sous\.example/console/approve/\S+)")


@pytest.fixture
async def sink(clock: ManualClock) -> AsyncIterator[SmtpSink]:
    async with SmtpSink(clock=clock) as running:
        yield running


@pytest.fixture
def mailing(container: Container, engine: Engine, sink: SmtpSink, api_db: Database) -> None:
    engine.services.add(SmtpConfig(port=sink.port, sender="sous@shop.example"), SmtpConfig)
    engine.services.add(api_db, Database)
    engine.services.add(ApprovalLinks("s3cret", "https://sous.example"))


async def waiting(client: httpx.AsyncClient, engine: Engine, headers: dict[str, str]) -> str:
    made = await client.post(
        "/v1/recipes",
        json=recipe(
            id="big-order",
            trigger={"type": "custom.order"},
            conditions=[],
            actions=[ASK, AFTER],
        ),
        headers=headers,
    )
    assert made.status_code == 201, made.text
    result = await engine.ingest(
        NewEvent(type="custom.order", payload={"order": {"id": 1042, "total": "2450.00"}})
    )
    await engine.drain()
    [run_id] = result.runs
    return run_id


def status_of(engine: Engine, run_id: str) -> Any:
    from engine import RunRow

    with engine.db.session() as s:
        row = s.get(RunRow, run_id)
        assert row is not None
        return row.status


async def test_the_approvals_page_lists_and_decides_with_csrf(
    signed_in: httpx.AsyncClient,
    client: httpx.AsyncClient,
    engine: Engine,
    admin: dict[str, str],
    mailing: None,
) -> None:
    run_id = await waiting(client, engine, admin)
    listed = await signed_in.get("/console/approvals")
    assert listed.status_code == 200
    assert "Release order 1042?" in listed.text and "Order 1042 is worth 2450.00." in listed.text
    assert 'href="/console/approvals" aria-current="page"' in listed.text
    [approval] = (await client.get("/v1/approvals", headers=admin)).json()["data"]
    forged = await signed_in.post(
        f"/console/approvals/{approval['id']}", data={"decision": "approve", "csrf": "nope"}
    )
    assert forged.status_code == 403
    assert status_of(engine, run_id) == "waiting"
    decided = await signed_in.post(
        f"/console/approvals/{approval['id']}",
        data={"decision": "reject", "comment": "too big", "csrf": csrf_of(listed.text)},
    )
    assert decided.status_code == 303
    assert decided.headers["location"] == "/console/approvals?done=rejected"
    await engine.drain()
    assert status_of(engine, run_id) == "skipped"
    after = await signed_in.get("/console/approvals?done=rejected")
    assert "Nothing is waiting for a decision." in after.text
    again = await signed_in.post(
        f"/console/approvals/{approval['id']}",
        data={"decision": "approve", "csrf": csrf_of(listed.text)},
    )
    assert again.status_code == 409
    assert "already decided: rejected" in again.text


async def test_the_run_page_shows_its_waiting_approval(
    signed_in: httpx.AsyncClient,
    client: httpx.AsyncClient,
    engine: Engine,
    admin: dict[str, str],
    mailing: None,
) -> None:
    run_id = await waiting(client, engine, admin)
    shown = await signed_in.get(f"/console/runs/{run_id}")
    assert "Waiting for approval: Release order 1042?" in shown.text
    [approval] = (await client.get("/v1/approvals", headers=admin)).json()["data"]
    decided = await signed_in.post(
        f"/console/approvals/{approval['id']}",
        data={
            "decision": "approve",
            "back": f"/console/runs/{run_id}",
            "csrf": csrf_of(shown.text),
        },
    )
    assert decided.headers["location"] == f"/console/runs/{run_id}?done=approved"
    await engine.drain()
    assert status_of(engine, run_id) == "succeeded"
    again = await signed_in.get(f"/console/runs/{run_id}")
    assert "Waiting for approval" not in again.text


async def _links(sink: SmtpSink) -> dict[str, str]:
    [message] = await sink.wait_for(1)
    assert message.to == ["manager@shop.example"]
    assert message.subject == "Approval needed: Release order 1042?"
    assert message.text is not None and "Order 1042 is worth 2450.00." in message.text
    found = LINK.findall(message.text)
    assert len(found) == 2
    return {"approve": found[0], "reject": found[1]}


async def test_an_emailed_link_confirms_on_get_and_decides_on_post_once(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    engine: Engine,
    admin: dict[str, str],
    mailing: None,
    sink: SmtpSink,
) -> None:
    run_id = await waiting(client, engine, admin)
    links = await _links(sink)
    assert "decision=approve" in links["approve"] and "sig=" in links["approve"]
    path = links["approve"].removeprefix("https://sous.example")
    shown = await browser.get(path)  # what a mail scanner does: nothing is decided
    assert shown.status_code == 200
    assert "Nothing is decided until you press the button." in shown.text
    assert status_of(engine, run_id) == "waiting"
    no_token = await browser.post(path, data={"csrf": "guess"})
    assert no_token.status_code == 403
    decided = await browser.post(path, data={"csrf": csrf_of(shown.text), "comment": "ok"})
    assert decided.status_code == 200
    assert "Approved. Thank you" in decided.text
    await engine.drain()
    assert status_of(engine, run_id) == "succeeded"
    [approval] = (await client.get(f"/v1/runs/{run_id}", headers=admin)).json()["steps"][:1]
    assert approval["output"]["decided_by"] == "link"
    reused = await browser.get(path)
    assert reused.status_code == 409
    assert "already decided: approved" in reused.text


async def test_forged_and_expired_links_are_refused(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    engine: Engine,
    admin: dict[str, str],
    mailing: None,
    sink: SmtpSink,
    clock: ManualClock,
) -> None:
    run_id = await waiting(client, engine, admin)
    links = await _links(sink)
    reject = links["reject"].removeprefix("https://sous.example")
    forged = await browser.get(reject.replace("decision=reject", "decision=approve"))
    assert forged.status_code == 403
    assert "This link is not valid" in forged.text
    shown = await browser.get(reject)
    assert shown.status_code == 200
    clock.advance(timedelta(days=2).total_seconds() + 1)
    late = await browser.post(reject, data={"csrf": csrf_of(shown.text)})
    assert late.status_code == 403
    assert "This link has expired" in late.text
    await engine.drain()
    assert status_of(engine, run_id) == "skipped"  # the default (reject) applied at the timeout
    assert BASE.startswith("http://")
