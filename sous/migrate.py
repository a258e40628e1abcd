"""Apply (or generate) schema migrations with Alembic, without an alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


QUEUE_TABLES = ("procrastinate_", "sous_procrastinate_schema", "sous_quota_", "sous_flood_")


def ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's ``include_object``: Sous's own tables only. The PostgreSQL queue's schema
    (procrastinate's tables and the record of its version) is installed and upgraded by
    ``sous migrate`` through procrastinate, and the tables of the shared BigCommerce quota and
    flood windows by :func:`upgrade` on PostgreSQL, not by these migrations."""
    return not (type_ == "table" and reflected and (name or "").startswith(QUEUE_TABLES))


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision``; at the head on PostgreSQL, also the tables of
    the BigCommerce quota and the flood windows every process shares (idempotent)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    if revision == "head" and engine.dialect.name == "postgresql":
        from connectors.bigcommerce.ratelimit_pg import install_tables
        from sous.distributed import install_tables as install_flood_tables

        install_tables(engine)
        install_flood_tables(engine)
