"""The composition root: builds the database, registry, services and engine from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.clock import Clock, SystemClock
from engine.context import Services
from engine.engine import Engine, EngineSettings
from engine.registry import Registry
from engine.store.db import Database
from sous.registry import build_registry, connectors
from sous.settings import Settings

__all__ = ["Container", "build", "build_registry", "connectors"]


@dataclass
class Container:
    settings: Settings
    db: Database
    registry: Registry
    engine: Engine
    services: Services
    clock: Clock
    extras: dict[str, Any] = field(default_factory=dict)


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
    return Container(settings, db, registry, engine, services, clock)
