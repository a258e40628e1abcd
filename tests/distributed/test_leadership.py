"""One process of many does the periodic work: the one holding the advisory lock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from engine import Engine
from engine.clock import ManualClock
from engine.registry import Registry
from engine.store.db import Database
from engine.timing.leader import Leadership
from engine.timing.scheduler import Scheduler
from sous.container import connectors


@pytest.fixture
def two(pg_url: str) -> Iterator[tuple[Database, Database]]:
    """Two processes' worth of connections to one database."""
    first, second = Database(pg_url), Database(pg_url)
    yield first, second
    first.dispose()
    second.dispose()


async def test_one_leads_and_another_takes_over_when_it_goes(
    two: tuple[Database, Database],
) -> None:
    name = f"test:{uuid.uuid4().hex}"
    a, b = Leadership(two[0], name), Leadership(two[1], name)
    assert await a.lead() is True
    assert await b.lead() is False
    assert await a.lead() is True  # still leading: asked again, nothing changes
    a.close()
    assert await b.lead() is True
    assert await a.lead() is False
    with two[0].engine.connect() as admin:  # the leader's connection dies (a crashed process)
        admin.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
        admin.commit()
    assert await b.lead() is False  # it notices on its next check and lets go
    assert await a.lead() is True
    a.close()
    b.close()


async def test_only_the_leading_replica_runs_the_schedulers_turn(
    two: tuple[Database, Database],
) -> None:
    clock = ManualClock()
    ran: list[str] = []
    schedulers = []
    for label, db in zip(("first", "second"), two, strict=True):
        engine = Engine(db, Registry(connectors()), clock=clock)
        scheduler = Scheduler(engine)

        async def note(label: str = label) -> None:
            ran.append(label)

        scheduler.every("probe", timedelta(minutes=1), note)
        schedulers.append((engine, scheduler))
    clock.advance(60)
    reports = [await s.tick() for _, s in schedulers]
    for _, scheduler in schedulers:
        await scheduler.settle()
    assert [r.started for r in reports] == [["probe"], []]
    assert ran == ["first"]
    for engine, _ in schedulers:
        engine.leadership.close()
