"""The processes of the multi-process tests and the benchmark, with a recording action added:

    python -m tests.distributed.proc worker [sous worker options]
    python -m tests.distributed.proc serve [sous serve options]

``test.ledger`` writes its idempotency key to ``ledger`` (unique) and every attempt to
``ledger_attempts``, so a test can count executions and spot duplicates. ``serve`` runs the real
``sous serve`` with the container built for the queue the settings name.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import text

from engine.context import ActionContext
from engine.registry import ActionSpec, Connector, Params
from engine.store.db import Database

LEDGER_TABLES = (
    "CREATE TABLE IF NOT EXISTS ledger (key text PRIMARY KEY, pid int NOT NULL,"
    " at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE TABLE IF NOT EXISTS ledger_attempts (key text NOT NULL, pid int NOT NULL)",
)


class LedgerParams(Params):
    note: str = ""
    pause_ms: int = Field(default=0, ge=0, le=5000)


class LedgerOutput(BaseModel):
    key: str
    fresh: bool


def ledger_connector() -> Connector:
    async def ledger(ctx: ActionContext, params: LedgerParams) -> LedgerOutput:
        db = ctx.services.find(Database)
        assert db is not None
        key, pid = ctx.idempotency_key, os.getpid()

        def write() -> bool:
            with db.engine.begin() as conn:
                conn.execute(
                    text("INSERT INTO ledger_attempts VALUES (:k, :p)"), {"k": key, "p": pid}
                )
                inserted = conn.execute(
                    text("INSERT INTO ledger (key, pid) VALUES (:k, :p) ON CONFLICT DO NOTHING"),
                    {"k": key, "p": pid},
                ).rowcount
            return bool(inserted)

        fresh = await asyncio.to_thread(write)
        if params.pause_ms:
            await asyncio.sleep(params.pause_ms / 1000)
        return LedgerOutput(key=key, fresh=fresh)

    return Connector(
        name="test",
        description="a ledger of executed steps, for the multi-process tests",
        actions=(
            ActionSpec(
                name="test.ledger",
                description="write the step's idempotency key once",
                params=LedgerParams,
                output=LedgerOutput,
                handler=ledger,
                writes="a row in ledger",
            ),
        ),
    )


def _patch() -> None:
    import sous.registry
    import sous.serve
    from sous.container import build as build_container

    original = sous.registry.connectors
    sous.registry.connectors = lambda: [*original(), ledger_connector()]

    def build(settings: Any, **_: Any) -> Any:
        return build_container(settings, migrate=False)

    sous.serve.build = build  # type: ignore[attr-defined]


def main(argv: list[str]) -> int:
    _patch()
    if argv[0] == "worker":
        from sous.worker import main as worker_main

        return worker_main(argv)
    from sous.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
