"""Every module that defines tables, imported in one place (for Alembic and ``create_all``)."""

from __future__ import annotations

import importlib

TABLE_MODULES = (
    "engine.store.models",
    "engine.store.schedule_models",
    "engine.store.audit",
    "engine.store.usage",
    "engine.packs.models",
    "api.tables",
    "connectors.email.models",
    "connectors.http.inbound",
    "connectors.bigcommerce.models",
    "connectors.bigcommerce.single_click.models",
    "connectors.backorder.models",
)


def import_all_tables() -> None:
    for name in TABLE_MODULES:
        importlib.import_module(name)
