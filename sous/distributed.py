"""What distributed mode (PostgreSQL, the procrastinate queue, several processes) changes in
the engine so that a recipe's limits mean the same in every process, and which recipes it
refuses because a promise of theirs cannot be kept there.

Held across processes:

* **Flood windows** (:class:`PgFloodGate`): the runs a recipe started in the current window are
  counted in the row ``sous_flood_window`` of (recipe, window start), taken and given back by
  single statements, so every process counts against one number; a recipe's owners are told
  once per window (``sous_flood_told``), whichever process holds the run.
* **Concurrency keys, ``queued`` order, ``parallel``'s ``max_runs``**: procrastinate's lock keys
  (see :func:`engine.plan.modes.lock_of`); a ``parallel`` recipe's runs are spread over
  ``max_runs`` keys, so no more than ``max_runs`` go at once. Unlike in one process, a run may
  wait for its key while another key is free: the limit holds, the order across keys is not
  that of the events.

Refused at save time (:class:`DistributedRecipeStore`), with the reason: ``mode: single`` (a run
arriving while one is going must be skipped, which needs one process to know every run going),
``mode: restart`` (cancelling the older runs needs the same), and ``mode: queued`` with
``max_runs`` (the longest line: runs beyond it must be held, which no process can count while
others add to it). A ``queued`` recipe without ``max_runs`` keeps its order, with no limit on
its line.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine as SqlEngine, text

from engine import Database, Engine, ErrorDetail, Recipe, RecipeError, format_loc
from engine.model.limits import FloodLimit
from engine.model.recipe import Mode
from engine.plan.modes import FloodGate
from engine.store.recipes import SqlRecipeStore

TABLES = (
    """CREATE TABLE IF NOT EXISTS sous_flood_window (
        recipe_uid text NOT NULL, window_start timestamptz NOT NULL, runs int NOT NULL,
        PRIMARY KEY (recipe_uid, window_start))""",
    """CREATE TABLE IF NOT EXISTS sous_flood_told (
        recipe_uid text NOT NULL, window_start timestamptz NOT NULL,
        PRIMARY KEY (recipe_uid, window_start))""",
)
_TAKE = text(
    "INSERT INTO sous_flood_window (recipe_uid, window_start, runs) VALUES (:u, :w, 1)"
    " ON CONFLICT (recipe_uid, window_start) DO UPDATE SET runs = sous_flood_window.runs + 1"
    " WHERE sous_flood_window.runs < :most RETURNING runs"
)
_GIVE_BACK = text(
    "UPDATE sous_flood_window SET runs = runs - 1"
    " WHERE recipe_uid = :u AND window_start = :w AND runs > 0"
)
_TELL = text(
    "INSERT INTO sous_flood_told (recipe_uid, window_start) VALUES (:u, :w)"
    " ON CONFLICT DO NOTHING RETURNING 1"
)
KEEP = timedelta(days=2)
"""Windows older than this are deleted when a recipe opens a new one."""


def install_tables(engine: SqlEngine) -> None:
    """Create the flood windows' tables (``sous migrate``; idempotent)."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('sous:flood'))"))
        for statement in TABLES:
            conn.execute(text(statement))


class PgFloodGate(FloodGate):
    """:class:`FloodGate` with its counts in PostgreSQL, shared by every process."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self._db = db

    def take(self, uid: str, limit: FloodLimit, now: datetime) -> tuple[bool, datetime]:
        start = self.window(now, limit)
        with self._db.engine.begin() as conn:
            taken = conn.execute(_TAKE, {"u": uid, "w": start, "most": limit.max_runs}).first()
            if taken is not None and taken[0] == 1:  # a new window: forget the old ones
                for table in ("sous_flood_window", "sous_flood_told"):
                    conn.execute(
                        text(f"DELETE FROM {table} WHERE recipe_uid = :u AND window_start < :w"),  # noqa: S608
                        {"u": uid, "w": start - KEEP},
                    )
        return taken is not None, start

    def give_back(self, uid: str, start: datetime) -> None:
        with self._db.engine.begin() as conn:
            conn.execute(_GIVE_BACK, {"u": uid, "w": start})

    def first_hold(self, uid: str, start: datetime) -> bool:
        with self._db.engine.begin() as conn:
            return conn.execute(_TELL, {"u": uid, "w": start}).first() is not None


def problems(recipe: Recipe, document: Any) -> list[ErrorDetail]:
    """Why ``recipe`` cannot keep its promises in distributed mode (empty: it can)."""
    found = []
    mode = recipe.mode
    if mode in (Mode.SINGLE, Mode.RESTART):
        what = "skipped" if mode is Mode.SINGLE else "cancelled in favour of the new one"
        found.append(
            ErrorDetail(
                path=format_loc(("mode",)),
                message=f"mode {mode.value} is not available in distributed mode: a run arriving "
                f"while another is going must be {what}, which needs one process that knows "
                "every run going; use queued (one at a time, in order) or run Sous embedded",
                loc=("mode",),
            )
        )
    explicit = isinstance(document, dict) and "max_runs" in document
    if mode is Mode.QUEUED and explicit:
        found.append(
            ErrorDetail(
                path=format_loc(("max_runs",)),
                message="max_runs of a queued recipe (runs beyond it held) is not available in "
                "distributed mode: no process can count the line while others add to it; "
                "leave it out (the line is then not limited) or run Sous embedded",
                loc=("max_runs",),
            )
        )
    return found


class DistributedRecipeStore(SqlRecipeStore):
    """The recipe store of distributed mode: refuses, at save time and with the reason, what
    :func:`problems` names."""

    def validate(self, document: Any) -> Recipe:
        recipe = super().validate(document)
        found = problems(recipe, document)
        if found:
            raise RecipeError(found)
        return recipe


def install(engine: Engine) -> None:
    """Make ``engine`` (on a queue shared by several processes) keep recipe limits across
    processes; call before anything else uses it."""
    install_tables(engine.db.engine)  # sous migrate made them; a process may start first
    engine.floods = PgFloodGate(engine.db)
    engine.recipes = DistributedRecipeStore(engine.db, engine.registry, engine.clock)
