"""A shop to run the shipped templates in: the store simulator and the BigCommerce connector
under uvicorn (the backorder tests' live rig), the backorder connector, an SMTP sink, a local
endpoint for ``http.request`` (private addresses allowed), and a vault with the secrets the
integration templates read."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

from connectors.email import SmtpConfig
from connectors.email.sink import SmtpSink
from connectors.http import OutboundPolicy
from engine import ApprovalLinks
from engine.store.vault import Cipher, Vault
from tests.connectors.backorder.live import SECRET_KEY, Rig, live
from tests.fakes import Recorder
from tests.servers import serve


@dataclass
class Shop:
    rig: Rig
    sink: SmtpSink
    endpoint: str
    received: list[dict[str, Any]] = field(default_factory=list)


def receiver(received: list[dict[str, Any]]) -> FastAPI:
    """Stands in for an ERP, Slack or an e-mail platform: keeps what it is sent."""
    app = FastAPI()

    @app.post("/{path:path}")
    async def take(path: str, request: Request) -> dict[str, bool]:
        received.append(
            {"path": "/" + path, "body": await request.json(), "headers": dict(request.headers)}
        )
        return {"ok": True}

    return app


@contextlib.asynccontextmanager
async def open_shop(folder: Path, recorder: Recorder) -> AsyncIterator[Shop]:
    received: list[dict[str, Any]] = []
    async with contextlib.AsyncExitStack() as stack:
        rig = await stack.enter_async_context(live(folder, recorder))
        sink = await stack.enter_async_context(SmtpSink(clock=rig.clock))
        endpoint = await stack.enter_async_context(serve(receiver(received)))
        services = rig.engine.services
        services.add(SmtpConfig(port=sink.port, sender="Sous <sous@shop.example>"), SmtpConfig)
        services.add(ApprovalLinks(SECRET_KEY, "https://sous.example"))
        services.add(OutboundPolicy(allow_private=True), OutboundPolicy)
        vault = Vault(rig.engine.db, Cipher(SECRET_KEY), rig.clock)
        vault.put("default", "slack_webhook_url", f"{endpoint}/slack")
        vault.put("default", "erp_token", "erp-secret-token")
        services.add(vault, Vault)
        yield Shop(rig, sink, endpoint, received)
