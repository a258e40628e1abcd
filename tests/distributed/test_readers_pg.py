"""On PostgreSQL, readers have a pool of their own and their transactions are READ ONLY."""

from __future__ import annotations

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
