"""Reading recipes for the API: the public shape, and the filtered, paged list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlmodel import Session, col, select

from api.models import RecipePublic
from engine import Recipe, RecipeRow, StoredRecipe, StoreRow, Tx

_CHUNK = 200


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


def _rows(
    session: Session, workspace: str, enabled: bool | None, after: str | None
) -> Iterator[RecipeRow]:
    while True:
        query = select(RecipeRow).where(RecipeRow.workspace_id == workspace)
        if enabled is not None:
            query = query.where(RecipeRow.enabled == enabled)
        if after is not None:
            query = query.where(RecipeRow.slug > after)
        chunk = session.exec(query.order_by(col(RecipeRow.slug)).limit(_CHUNK)).all()
        yield from chunk
        if len(chunk) < _CHUNK:
            return
        after = chunk[-1].slug


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
    for row in _rows(session, workspace, enabled, cursor):
        if _wanted(row, trigger, text):
            found.append(row)
            if len(found) > limit:
                break
    return found
