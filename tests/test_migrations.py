"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlmodel import SQLModel

from sous.migrate import ours, upgrade
from sous.tables import import_all_tables


def test_migrations_match_models(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    import_all_tables()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_migrations_match_models_beside_the_postgresql_queue() -> None:
    from tests.distributed.pg import fresh_database

    with fresh_database() as url:  # migrated, with procrastinate's schema installed
        engine = create_engine(url)
        import_all_tables()
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"include_object": ours})
                diff = compare_metadata(context, SQLModel.metadata)
                assert diff == [], f"models and migrations differ: {diff}"
                everything = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
                assert any(  # the queue's tables are there, and only the filter leaves them out
                    op[0] == "remove_table" and op[1].name == "procrastinate_jobs"
                    for op in everything
                    if isinstance(op, tuple)
                )
        finally:
            engine.dispose()


def test_each_migration_upgrades_and_downgrades(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from sous.migrate import alembic_config

    engine = create_engine(f"sqlite:///{tmp_path / 'steps.db'}")
    config = alembic_config(engine)

    def columns() -> set[str]:
        return {c["name"] for c in inspect(engine).get_columns("backorder_line")}

    upgrade(engine, "0001")
    assert "customer_email" not in columns()
    upgrade(engine)
    assert {"customer_email", "customer_name"} <= columns()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert "customer_email" not in columns()
