"""``GET /v1/sandbox/messages`` through the API: each workspace sees the mail Sous sent for it,
as the sandbox's SMTP sink captured it, and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiosmtplib
import httpx
import pytest
from pydantic import SecretStr

from api.app import create_app
from connectors.email import SmtpConfig
from engine import Engine
from engine.store.db import Database
from sous.container import Container
from sous.sandbox import Sandbox
from sous.settings import Settings
from tests.api.conftest import KeyFactory

MAIL = """\
id: tell-staff
name: Tell staff
trigger: {{type: test.stock}}
actions:
  - use: email.send
    with:
      to: [staff@{shop}.example]
      subject: "{shop}: {{{{ product.name }}}} sold out"
      text: "Sold out."
"""


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    box = Sandbox(Settings(secret_key=SecretStr("x" * 32)), shopper=False, announce=False)
    await box.sink.start()
    yield box
    await box.sink.stop()


@pytest.fixture
async def client(container: Container, sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    services = container.services
    services.add(container.db, Database)
    services.add(SmtpConfig(port=sandbox.sink.port, local_hostname="sous.test"), SmtpConfig)
    container.routers.append(sandbox.router())
    app = create_app(container)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sous.test") as http:
        yield http


async def _mail_from(client: httpx.AsyncClient, headers: dict[str, str], shop: str) -> None:
    text = MAIL.format(shop=shop)
    yaml_headers = {**headers, "Content-Type": "application/yaml"}
    made = await client.post("/v1/recipes", content=text, headers=yaml_headers)
    assert made.status_code == 201, made.text
    event = {"type": "test.stock", "payload": {"product": {"name": f"{shop} hat"}}}
    sent = await client.post("/v1/events", json=event, headers=headers)
    assert sent.status_code in (200, 201, 202), sent.text


def _subjects(answer: httpx.Response) -> list[Any]:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["count"] == len(body["data"])
    return [m["subject"] for m in body["data"]]


async def test_each_workspace_sees_only_its_own_mail(
    client: httpx.AsyncClient, make_key: KeyFactory, engine: Engine, sandbox: Sandbox
) -> None:
    acme, globex = make_key("acme", "write"), make_key("globex", "read", "write")
    await _mail_from(client, acme, "acme")
    await _mail_from(client, globex, "globex")
    await engine.drain()
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=sandbox.sink.port) as smtp:
        await smtp.sendmail("x@elsewhere.test", ["staff@acme.example"], b"Subject: not Sous\n\nhi")
    await sandbox.sink.wait_for(3)
    url = "/v1/sandbox/messages"
    assert _subjects(await client.get(url, headers=acme)) == ["acme: acme hat sold out"]
    assert _subjects(await client.get(url, headers=globex)) == ["globex: globex hat sold out"]
    assert _subjects(await client.get(url, headers=make_key("initech", "read"))) == []
