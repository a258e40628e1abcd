from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from engine.clock import ManualClock
from engine.context import Services
from engine.db import Database
from engine.engine import Engine, EngineSettings
from engine.registry import Registry
from sous.container import connectors
from sous.tables import import_all_tables
from tests.fakes import Recorder, recording_connector

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def require_services() -> bool:
    """CI sets SOUS_REQUIRE_SERVICES=1: a missing service then fails instead of skipping."""
    return os.environ.get("SOUS_REQUIRE_SERVICES") == "1"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    import_all_tables()
    database = Database(f"sqlite:///{tmp_path / 'sous.db'}")
    database.create_all()
    yield database
    database.dispose()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def registry(recorder: Recorder) -> Registry:
    return Registry([*connectors(), recording_connector(recorder)])


@pytest.fixture
async def engine(db: Database, registry: Registry, clock: ManualClock) -> AsyncIterator[Engine]:
    eng = Engine(db, registry, clock=clock, services=Services(), settings=EngineSettings(workers=4))
    await eng.start()
    yield eng
    await eng.stop()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A new PostgreSQL database for the module (migrated, with the queue's schema); skipped
    when PostgreSQL is absent, failed then under ``SOUS_REQUIRE_SERVICES=1``."""
    from tests.distributed.pg import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    """The module's PostgreSQL database, emptied before the test."""
    from tests.distributed.pg import truncate

    database = Database(pg_url)
    truncate(database)
    yield database
    database.dispose()
