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


def test_recipes_installed_with_a_pack_before_0009_are_recorded_as_made_from_it(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    engine = create_engine(f"sqlite:///{tmp_path / 'packs.db'}")
    upgrade(engine, "0008")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    insert = text(
        "INSERT INTO recipe (uid, workspace_id, slug, version, enabled, document, source,"
        " created_at, updated_at) VALUES (:uid, 'acme', :slug, 1, 1, '{}', :source, :t, :t)"
    )
    with engine.begin() as connection:
        for uid, slug, source in (
            ("rcp_1", "log", "pack:acme-basics@1.0.0"),
            ("rcp_2", "mine", "api"),
        ):
            connection.execute(insert, {"uid": uid, "slug": slug, "source": source, "t": now})
    upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT workspace_id, recipe_slug, recipe_uid, pack_name, pack_version,"
                " template_id FROM template_instance"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("acme", "log", "rcp_1", "acme-basics", "1.0.0", "")]
