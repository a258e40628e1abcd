"""The composition root: builds the database, registry, services and engine from settings."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from fastapi import APIRouter

from engine import Engine, EngineSettings
from engine.clock import Clock, SystemClock
from engine.context import Services
from engine.contracts import StoreConnector
from engine.registry import Registry
from engine.store.db import Database
from sous.registry import build_registry, connectors
from sous.settings import Settings

__all__ = ["Container", "build", "build_registry", "connectors"]


if TYPE_CHECKING:
    from connectors.bigcommerce.stores import BigCommerceConfig
    from engine.timing.scheduler import Scheduler
    from sous.sandbox import Sandbox


@dataclass
class Container:
    """Everything a running Sous is made of; :mod:`sous.wiring` fills in the optional parts."""

    settings: Settings
    db: Database
    registry: Registry
    engine: Engine
    services: Services
    clock: Clock
    stores: StoreConnector | None = None
    """The store connector (BigCommerce) the API hands connected stores to, once wired."""
    routers: list[APIRouter] = field(default_factory=list)
    """API routers beyond the core ones: store webhooks, reports, packs, the sandbox's."""
    bigcommerce: BigCommerceConfig | None = None
    """The BigCommerce connector's settings (default: ``SOUS_BIGCOMMERCE_*``)."""
    store_transport: httpx.AsyncBaseTransport | None = None
    """Reaches the store API instead of the network (a sandbox's simulator, tests)."""
    public_base_url: str | None = None
    """Where BigCommerce reaches this Sous (default ``http://{host}:{port}``)."""
    pack_library: Path | None = None
    """The template library (default: the one shipped with Sous)."""
    pack_verify: ssl.SSLContext | None = None
    """Certificates to trust for pack downloads instead of the system's (tests)."""
    scheduler: Scheduler | None = None
    sandbox: Sandbox | None = None
    http_task: asyncio.Task[None] | None = None

    def base_url(self) -> str:
        return self.public_base_url or f"http://{self.settings.host}:{self.settings.port}"


def build(settings: Settings, *, clock: Clock | None = None, migrate: bool = True) -> Container:
    clock = clock or SystemClock()
    db = Database(settings.database_url)
    if migrate:
        from sous.migrate import upgrade

        upgrade(db.engine)
    registry = build_registry()
    services = Services()
    services.add(settings, Settings)
    from sous.worker import make_queue  # the distributed queue, when settings ask for it

    engine = Engine(
        db,
        registry,
        clock=clock,
        services=services,
        queue=make_queue(settings, db, clock),
        settings=EngineSettings(
            max_depth=settings.max_chain_depth,
            workers=settings.workers,
            backlog=settings.backlog,
            backlog_wait=settings.backlog_wait,
        ),
    )
    if settings.queue == "procrastinate":
        from sous.distributed import install

        install(engine)  # recipe limits across processes, or refused at save time
    return Container(settings, db, registry, engine, services, clock)
