from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import CodeType

import pytest

from engine import Engine, EngineSettings
from engine.clock import ManualClock
from engine.context import Services
from engine.registry import Registry
from engine.store.db import Database
from sous.container import connectors
from sous.tables import import_all_tables
from tests.fakes import Recorder, recording_connector

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SPECS = Path(os.environ.get("SOUS_BIGCOMMERCE_SPECS") or SHARED / "bigcommerce" / "specs")
"""BigCommerce's published OpenAPI documents and webhook payloads (a pinned copy of the specs/
folder of github.com/bigcommerce/docs; ``make specs`` fetches it). Tests that check the
connector and the simulator against them need this folder."""


def require_services() -> bool:
    """CI sets SOUS_REQUIRE_SERVICES=1: a missing service then fails instead of skipping."""
    return os.environ.get("SOUS_REQUIRE_SERVICES") == "1"


def specs_available() -> bool:
    return SPECS.is_dir() and any(SPECS.glob("*.yml"))


def require_specs() -> None:
    """Skip the calling test (or fixture) when BigCommerce's specs are absent; fail instead
    under ``SOUS_REQUIRE_SERVICES=1`` (CI)."""
    if specs_available():
        return
    reason = (
        f"BigCommerce's published specs are not at {SPECS}: set SOUS_BIGCOMMERCE_SPECS to "
        "their folder, or run `make specs` to fetch the pinned copy"
    )
    if require_services():
        pytest.fail(reason + " (required: SOUS_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def _names(code: CodeType) -> set[str]:
    """The global names a function's code reads, its comprehensions and inner functions too."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _names(const)
    return names


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that reads the specs folder itself (``SPECS``) needs it there; tests that reach
    the specs through a helper (spec_check, openapi_requests) are checked by that helper."""
    function = getattr(item, "function", None)
    if function is None or function.__globals__.get("SPECS") is not SPECS:
        return
    if "SPECS" in _names(function.__code__):
        require_specs()


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
