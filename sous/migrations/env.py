"""Alembic environment: the tables of the engine and of every connector that keeps state."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from sous.migrate import ours
from sous.tables import import_all_tables

import_all_tables()
config = context.config
target_metadata = SQLModel.metadata


def run() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        from sqlalchemy import create_engine

        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as connection:
            _migrate(connection)
    else:
        _migrate(connectable)


def _migrate(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=ours,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
