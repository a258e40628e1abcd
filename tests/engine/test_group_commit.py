"""The group commit: many writers' functions in one transaction, and one bad write fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.store.db import Database, Tx
from engine.store.models import StepRow
from sous.tables import import_all_tables

STEPS = StepRow.__table__  # type: ignore[attr-defined]


def step(run_id: str, index: int = 0) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "index": index,
        "step_id": "s",
        "use": "x",
        "status": "succeeded",
        "attempts": 1,
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    import_all_tables()
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'w.db'}")
        db.create_all()
        yield db
        db.dispose()
        return
    from tests.distributed.pg import fresh_database

    with fresh_database() as url:
        db = Database(url)
        yield db
        db.dispose()


async def test_a_deferred_write_that_breaks_a_key_fails_alone(database: Database) -> None:
    database.run_sync(lambda tx: tx.insert(STEPS, [step("run_taken")]))

    def writer(row: dict[str, Any]) -> Any:
        def write(tx: Tx) -> str:
            tx.insert(STEPS, [row])  # deferred: flushed with the batch
            return str(row["run_id"])

        return write

    outcomes = await asyncio.gather(
        database.writer.write(writer(step("run_a"))),
        database.writer.write(writer(step("run_taken"))),  # already there
        database.writer.write(writer(step("run_b"))),
        return_exceptions=True,
    )
    assert outcomes[0] == "run_a" and outcomes[2] == "run_b"
    assert isinstance(outcomes[1], Exception)
    with database.engine.connect() as conn:
        stored = sorted(conn.execute(select(STEPS.c.run_id)).scalars())
    assert stored == ["run_a", "run_b", "run_taken"]
