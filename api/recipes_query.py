"""Reading recipes for the API and the console: the public shape, the filtered, paged list, and
what a page of recipes did lately."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from api.models import RecipePublic
from api.pagination import unindexed
from engine import Recipe, RecipeRow, RunRow, RunStatus, StoredRecipe, StoreRow, Tx

_CHUNK = 200
_RUNS = RunRow.__table__  # type: ignore[attr-defined]
_RECIPES = RecipeRow.__table__  # type: ignore[attr-defined]


def public_stored(stored: StoredRecipe) -> RecipePublic:
    return RecipePublic(
        id=stored.recipe.id,
        uid=stored.uid,
        name=stored.recipe.name,
        trigger_type=stored.recipe.trigger.type,
        version=stored.version,
        enabled=stored.enabled,
        disabled_reason=stored.disabled_reason,
        source=stored.source,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
        document=stored.recipe.document(),
    )


def store_warnings(tx: Tx, workspace: str, recipe: Recipe) -> list[str]:
    """A recipe limited to a store that is not connected never fires there (a typo in a store
    hash looks just like that). Saving first and connecting after is allowed: this only says so,
    naming the stores that are connected."""
    wanted = recipe.stores()
    if not wanted:
        return []
    query = select(StoreRow.store_hash).where(StoreRow.workspace_id == workspace)
    connected = sorted(tx.conn.execute(query).scalars())
    known = ", ".join(connected) if connected else "none yet"
    return [
        f"store {store!r} is not connected to this workspace: the recipe will not run for it "
        f"until it is (connected stores: {known})"
        for store in wanted
        if store not in connected
    ]


def public_row(row: RecipeRow) -> RecipePublic:
    doc: dict[str, Any] = dict(row.document or {})
    return RecipePublic(
        id=row.slug,
        uid=row.uid,
        name=str(doc.get("name", "")),
        trigger_type=str((doc.get("trigger") or {}).get("type", "")),
        version=row.version,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        source=row.source,
        created_at=row.created_at,
        updated_at=row.updated_at,
        document=doc,
    )


_PLAIN = re.compile(r"^[a-z0-9._-]+$")
"""Text that JSON writes as it is (no escapes), so it is found in a document's JSON text."""


def _somewhere(trigger: str | None, text: str | None) -> list[str]:
    """Words each wanted recipe's document holds somewhere in its JSON text: the database skips
    the others before any is read (the exact test, :func:`_wanted`, follows)."""
    words = (text or "").lower().split()
    if trigger is not None:
        words.append(trigger[:-1] if trigger.endswith("*") else trigger)
    return [w for w in words if _PLAIN.match(w)]


def _rows(
    session: Session,
    workspace: str,
    enabled: bool | None,
    after: str | None,
    chunk: int,
    words: list[str],
) -> Iterator[RecipeRow]:
    while True:
        query = select(RecipeRow).where(RecipeRow.workspace_id == workspace)
        for word in words:
            query = query.where(sa.cast(col(RecipeRow.document), sa.Text).ilike(f"%{word}%"))
        if enabled is not None:
            query = query.where(RecipeRow.enabled == enabled)
        if after is not None:
            query = query.where(RecipeRow.slug > after)
        rows = session.exec(query.order_by(col(RecipeRow.slug)).limit(chunk)).all()
        yield from rows
        if len(rows) < chunk:
            return
        after = rows[-1].slug


def _wanted(row: RecipeRow, trigger: str | None, text: str | None) -> bool:
    doc = row.document or {}
    if trigger is not None:
        type_ = str((doc.get("trigger") or {}).get("type", ""))
        if not (type_.startswith(trigger[:-1]) if trigger.endswith("*") else type_ == trigger):
            return False
    if text:
        haystack = " ".join(str(doc.get(k, "")) for k in ("id", "name", "description")).lower()
        return text.lower() in haystack
    return True


def search(
    session: Session,
    workspace: str,
    *,
    enabled: bool | None,
    trigger: str | None,
    text: str | None,
    limit: int,
    cursor: str | None,
) -> list[RecipeRow]:
    """Up to ``limit + 1`` recipes after ``cursor`` (by id), filtered."""
    found: list[RecipeRow] = []
    # Unfiltered, the page is the first limit + 1 rows: no more are read (documents are large).
    chunk = _CHUNK if trigger is not None or text else limit + 1
    words = _somewhere(trigger, text)
    for row in _rows(session, workspace, enabled, cursor, chunk, words):
        if _wanted(row, trigger, text):
            found.append(row)
            if len(found) > limit:
                break
    return found


@dataclass(frozen=True)
class Activity:
    """What a recipe did lately: its newest run, and how many of its runs failed since a time."""

    last_run_id: str | None = None
    last_run_status: str | None = None
    last_run_at: datetime | None = None
    failures: int = 0


def activity(
    session: Session, workspace: str, uids: Sequence[str], since: datetime
) -> dict[str, Activity]:
    """:class:`Activity` of each recipe of ``uids``, in one query: per recipe, one step down the
    index of its runs by id (the newest) and a count over its runs created since ``since``."""
    if not uids:
        return {}
    runs, newest, recipe = _RUNS.alias("runs"), _RUNS.alias("newest"), _RECIPES
    last = (
        sa.select(runs.c.id)
        .where(runs.c.recipe_uid == recipe.c.uid)
        .order_by(runs.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    failed = (
        sa.select(sa.func.count())
        .where(
            runs.c.recipe_uid == recipe.c.uid,
            runs.c.created_at >= since,
            runs.c.status == RunStatus.FAILED.value,
        )
        .scalar_subquery()
    )
    per = (
        sa.select(recipe.c.uid, last.label("last_id"), failed.label("failures"))
        # By uid (the primary key), not by the workspace's index, which would read every
        # recipe of the workspace to find the page's few.
        .where(unindexed(recipe.c.workspace_id) == workspace, recipe.c.uid.in_(list(uids)))
        .subquery()
    )
    found = session.connection().execute(
        sa.select(per.c.uid, per.c.failures, newest.c.id, newest.c.status, newest.c.created_at)
        .select_from(per)
        .join(newest, newest.c.id == per.c.last_id, isouter=True)
    )
    return {
        uid: Activity(run_id, status, created_at, int(failures or 0))
        for uid, failures, run_id, status, created_at in found
    }


_VERSIONS = sa.table(
    "recipe_version",
    sa.column("recipe_uid", sa.String),
    sa.column("version", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
"""The columns of ``recipe_version`` a list needs (not the documents)."""


def latest_versions(session: Session, uid: str, limit: int) -> list[tuple[int, datetime]]:
    """The recipe's newest ``limit`` versions and when each was made, newest first."""
    found = session.connection().execute(
        sa.select(_VERSIONS.c.version, _VERSIONS.c.created_at)
        .where(_VERSIONS.c.recipe_uid == uid)
        .order_by(_VERSIONS.c.version.desc())
        .limit(limit)
    )
    return [(int(version), created_at) for version, created_at in found]
