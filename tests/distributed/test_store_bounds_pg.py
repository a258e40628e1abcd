"""What the API accepts, PostgreSQL stores: the longest secret the API takes fits its column,
and two updates of one recipe at once write two versions (the second waits for the first)
instead of both writing the next one (a unique-key error, answered 500)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from api.models import SecretPut
from engine.clock import SystemClock
from engine.registry import Registry
from engine.store.db import Database
from engine.store.recipes import SqlRecipeStore
from engine.store.vault import Cipher, Vault
from sous.container import connectors

pytestmark = pytest.mark.postgres

RECIPE = {
    "id": "bounds",
    "name": "Bounds",
    "trigger": {"type": "custom.bounds"},
    "actions": [{"id": "log", "use": "core.log", "with": {"message": "hi"}}],
}


def test_the_longest_secret_the_api_takes_is_stored(pg_db: Database) -> None:
    field = SecretPut.model_fields["value"]
    longest = max(m.max_length for m in field.metadata if hasattr(m, "max_length"))
    value = "é" * longest  # two bytes each: the longest encrypted form
    vault = Vault(pg_db, Cipher("k"), SystemClock())
    vault.put("ws", "LONG", SecretPut(value=value).value)
    assert vault.get("ws", "LONG") == value


def test_an_update_waits_for_a_concurrent_one_and_writes_the_next_version(
    pg_db: Database,
) -> None:
    store = SqlRecipeStore(pg_db, Registry(connectors()), SystemClock())
    store.create("ws", RECIPE)
    done: list[int] = []
    failed: list[BaseException] = []

    def update() -> None:
        try:
            done.append(store.set_enabled("ws", "bounds", False).version)
        except BaseException as exc:  # reported below
            failed.append(exc)

    with pg_db.engine.connect() as other:
        # Another writer holds the recipe's row and moves it to version 2 meanwhile.
        other.execute(text("SELECT 1 FROM recipe WHERE slug = 'bounds' FOR UPDATE"))
        worker = threading.Thread(target=update)
        worker.start()
        worker.join(0.5)
        assert worker.is_alive(), "the update did not wait for the row's other writer"
        uid = other.execute(text("SELECT uid FROM recipe WHERE slug = 'bounds'")).scalar_one()
        other.execute(text("UPDATE recipe SET version = 2 WHERE uid = :u"), {"u": uid})
        other.execute(
            text(
                "INSERT INTO recipe_version (recipe_uid, version, document, created_at) "
                "SELECT recipe_uid, 2, document, created_at FROM recipe_version WHERE version = 1"
            )
        )
        other.commit()
    worker.join(10)
    assert failed == [] and done == [3]
    assert sorted(v for v, _ in store.versions("ws", "bounds")) == [1, 2, 3]
