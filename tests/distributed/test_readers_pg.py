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
    with fresh_database(prepare=False) as url:
        db = Database(url)
        try:
            pid = text("SELECT pg_backend_pid()")
            first = db.read_sync(lambda tx: tx.conn.execute(pid).scalar_one())
            with db.engine.connect() as conn:  # as a restarted server would: the pooled one dies
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
            again = db.read_sync(lambda tx: tx.conn.execute(pid).scalar_one())
            assert again != first
            session_pid = asyncio.run(db.query(lambda s: s.execute(pid).scalar_one()))
            assert session_pid != first
        finally:
            db.dispose()
