"""On PostgreSQL, readers have a pool of their own and their transactions are READ ONLY."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from engine.store.db import Database
from tests.distributed.pg import fresh_database


def test_a_read_is_read_only_and_does_not_use_the_writers_pool() -> None:
    with fresh_database(prepare=False) as url:
        db = Database(url)
        try:
            assert db.reader is not db.engine
            with db.engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (n int)"))
            show = text("SHOW transaction_read_only")
            assert db.read_sync(lambda tx: tx.conn.execute(show).scalar_one()) == "on"
            with pytest.raises(DBAPIError, match="read-only transaction"):
                db.read_sync(lambda tx: tx.conn.execute(text("INSERT INTO t VALUES (1)")))
            with db.engine.connect() as conn:
                assert conn.execute(show).scalar_one() == "off"
        finally:
            db.dispose()


def test_a_read_on_a_connection_the_server_dropped_is_made_again_on_a_new_one() -> None:
    pid = text("SELECT pg_backend_pid()")
    with fresh_database(prepare=False) as url:
        db = Database(url)

        def drop(backend: int) -> None:  # as a restarted server would: the pooled one dies
            with db.engine.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend})

        async def on_the_loop() -> None:  # reads awaited on the event loop (query and read)
            first = await db.query(lambda s: s.execute(pid).scalar_one())
            drop(first)
            second = await db.query(lambda s: s.execute(pid).scalar_one())
            assert second != first
            drop(second)
            assert await db.read(lambda tx: tx.conn.execute(pid).scalar_one()) != second
            await db.aclose()

        try:
            first = db.read_sync(lambda tx: tx.conn.execute(pid).scalar_one())
            drop(first)
            assert db.read_sync(lambda tx: tx.conn.execute(pid).scalar_one()) != first
            asyncio.run(on_the_loop())
        finally:
            db.dispose()


def test_reads_on_the_loop_are_read_only_too() -> None:
    with fresh_database(prepare=False) as url:
        db = Database(url)
        show = text("SHOW transaction_read_only")

        async def reads() -> tuple[str, str]:
            by_read = await db.read(lambda tx: tx.conn.execute(show).scalar_one())
            by_query = await db.query(lambda s: s.execute(show).scalar_one())
            await db.aclose()
            return by_read, by_query

        try:
            assert asyncio.run(reads()) == ("on", "on")
        finally:
            db.dispose()
