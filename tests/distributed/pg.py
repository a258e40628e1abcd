"""PostgreSQL for the distributed-mode tests: a throwaway database per module, migrated, with
procrastinate's schema; skipped when PostgreSQL is not reachable, failed instead under
``SOUS_REQUIRE_SERVICES=1`` (CI)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

from engine.clock import ManualClock
from engine.queue.procrastinate import install_schema
from engine.store.db import Database
from sous.migrate import upgrade
from tests.conftest import require_services

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KEEP = ("alembic_version", "sous_procrastinate_schema")


def server_url() -> str:
    return os.environ.get("SOUS_TEST_POSTGRES_URL") or DEFAULT_URL


def need_postgres() -> str:
    """The server's URL, or skip (fail under SOUS_REQUIRE_SERVICES=1) when it is not there."""
    url = server_url()
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        where = url.split("@")[-1]
        reason = (
            f"PostgreSQL is not reachable at {where} ({type(exc).__name__}); "
            "set SOUS_TEST_POSTGRES_URL to a server"
        )
        if require_services():
            pytest.fail(reason)
        pytest.skip(reason)
    return url


@contextmanager
def fresh_database(prepare: bool = True) -> Iterator[str]:
    """A new database ``sous_test_<random>`` on the test server (migrated, with procrastinate's
    schema when ``prepare``); dropped afterwards."""
    server = need_postgres()
    name = f"sous_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.rsplit("/", 1)[0] + f"/{name}"
    try:
        if prepare:
            engine = create_engine(url)
            upgrade(engine)
            install_schema(engine)
            engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def truncate(db: Database) -> None:
    """Empty every table but the schema bookkeeping (between tests sharing one database)."""
    first = ["procrastinate_events", "procrastinate_periodic_defers", "procrastinate_jobs"]
    with db.engine.begin() as conn:
        names = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
        rest = sorted(n for n in names if n not in KEEP and n not in first)
        for name in [*first, *rest]:
            conn.execute(text(f'DELETE FROM "{name}"'))


class PgManualClock(ManualClock):
    """A :class:`ManualClock` for the procrastinate queue. PostgreSQL's ``now()`` cannot be
    moved, and the queue keeps due times on the database's clock, so advancing this clock also
    moves every waiting job's due time back by the same amount: the same as time passing."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self._db = db

    def advance(self, seconds: float) -> None:
        with self._db.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE procrastinate_jobs"
                    " SET scheduled_at = scheduled_at - make_interval(secs => :s)"
                    " WHERE scheduled_at IS NOT NULL AND status = 'todo'"
                ),
                {"s": seconds},
            )
        super().advance(seconds)
