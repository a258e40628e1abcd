"""Alerts as a running Sous wires them: a recipe created through the API fails, and the
workspace's staff address (its own, else ``SOUS_STAFF_EMAIL``) gets the e-mail from a real SMTP
sink; the run's page link starts with where this Sous is reached."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from api.tables import WorkspaceSettingsRow
from connectors.email import SmtpConfig
from connectors.email.sink import SmtpSink
from engine.clock import ManualClock
from sous.alerts import install_alerts
from sous.container import Container
from tests.api.conftest import recipe
from tests.fakes import Recorder

FAILING = recipe(
    actions=[{"id": "push", "use": "test.flaky", "with": {"mode": "permanent"}}],
    auto_disable=False,
)


@pytest.fixture
async def sink(clock: ManualClock) -> AsyncIterator[SmtpSink]:
    async with SmtpSink(clock=clock) as running:
        yield running


async def test_a_failed_run_is_mailed_to_the_workspace_staff_address(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    container: Container,
    sink: SmtpSink,
    recorder: Recorder,
) -> None:
    container.services.add(SmtpConfig(port=sink.port, sender="sous@shop.example"), SmtpConfig)
    container.public_base_url = "https://sous.example"
    mailer = install_alerts(container)
    assert await mailer.recipients("default") == container.settings.staff_email
    with container.db.session() as session:
        own = WorkspaceSettingsRow(
            workspace_id="default", staff_email="ops@shop.example", updated_at=datetime.now(UTC)
        )
        session.add(own)
        session.commit()
    made = await client.post("/v1/recipes", json=FAILING, headers=admin)
    assert made.status_code == 201, made.text
    recorder.failures["push"] = 1
    sent = await client.post(
        "/v1/events", json={"type": "test.stock", "payload": {"product": {"id": 1}}}, headers=admin
    )
    run_id = sent.json()["runs"][0]
    await container.engine.drain()
    [message] = await sink.wait_for(1)
    assert message.to == ["ops@shop.example"]
    assert message.text is not None
    assert f"https://sous.example/console/runs/{run_id}" in message.text
    run = (await client.get(f"/v1/runs/{run_id}", headers=admin)).json()
    assert run["status"] == "failed"


async def test_a_workspace_that_switched_alerts_off_gets_no_e_mail(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    container: Container,
    sink: SmtpSink,
    recorder: Recorder,
) -> None:
    container.services.add(SmtpConfig(port=sink.port, sender="sous@shop.example"), SmtpConfig)
    mailer = install_alerts(container)
    with container.db.session() as session:
        off = WorkspaceSettingsRow(
            workspace_id="default",
            staff_email="ops@shop.example",
            alerts=False,
            updated_at=datetime.now(UTC),
        )
        session.add(off)
        session.commit()
    assert await mailer.recipients("default") is None
    assert await mailer.recipients("another") == container.settings.staff_email
    made = await client.post("/v1/recipes", json=FAILING, headers=admin)
    assert made.status_code == 201, made.text
    recorder.failures["push"] = 1
    sent = await client.post(
        "/v1/events", json={"type": "test.stock", "payload": {"product": {"id": 1}}}, headers=admin
    )
    run_id = sent.json()["runs"][0]
    await container.engine.drain()
    assert (await client.get(f"/v1/runs/{run_id}", headers=admin)).json()["status"] == "failed"
    assert sink.messages == []
