"""Usage counted by a write function reaches the database with its batch, once, and only if
the function's work stands (a batch that fails is run again in savepoints)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from engine.store.db import Database, Tx
from engine.store.usage import UsageRow, usage_key

KEY = usage_key("acme", "2026-12-01", "s1", "rcp_1")


async def test_counts_of_a_batch_run_again_in_savepoints_are_kept_once(db: Database) -> None:
    db.create_all()

    def counts(tx: Tx) -> None:
        tx.count(KEY, "runs")

    def fails(tx: Tx) -> None:
        tx.count(KEY, "runs", 100)
        raise ValueError("refused")

    results = await asyncio.gather(
        db.writer.write(counts), db.writer.write(fails), return_exceptions=True
    )
    assert isinstance(results[1], ValueError)
    db.usage.add(KEY, "steps", 2)  # counted outside a write: goes with the next batch
    await db.writer.write(counts)
    with db.read_session() as session:
        [row] = session.exec(select(UsageRow)).all()
    assert (row.workspace_id, row.day, row.store, row.recipe) == KEY
    assert (row.runs, row.steps) == (2, 2)
    assert db.usage.written("acme", "2026-12-01") == {"runs": 2, "steps": 2}


async def test_counts_of_a_failed_commit_wait_for_the_next(db: Database) -> None:
    db.create_all()
    UsageRow.__table__.drop(db.engine)  # type: ignore[attr-defined]
    db.usage.add(KEY, "emails", 3)
    with pytest.raises(OperationalError):  # no table: the batch's commit fails
        await db.writer.write(lambda tx: None)
    db.create_all()
    await db.writer.write(lambda tx: None)
    with db.read_session() as session:
        assert [r.emails for r in session.exec(select(UsageRow)).all()] == [3]
