"""Register the services connectors need (store clients, SMTP, outbound policy, ledger)."""

from __future__ import annotations

import contextlib

from engine.db import Database
from engine.vault import Cipher, Vault
from sous.container import Container


async def wire(container: Container, stack: contextlib.AsyncExitStack) -> None:
    services = container.services
    settings = container.settings
    services.add(container.db, Database)
    services.add(Vault(container.db, Cipher(settings.secret_key.get_secret_value()), container.clock))
