"""Recipes in the database: every change is a new version; updates check the version they
were based on (optimistic concurrency)."""

from __future__ import annotations

import builtins
import difflib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from engine.authoring.validation import validate_document
from engine.clock import Clock
from engine.errors import ConflictError, NotFoundError, RecipeError
from engine.model.ids import new_id
from engine.model.recipe import Recipe
from engine.registry import Registry
from engine.store import audit
from engine.store.db import Database
from engine.store.models import RecipeRow, RecipeVersionRow


@dataclass(frozen=True)
class StoredRecipe:
    uid: str
    workspace: str
    version: int
    enabled: bool
    recipe: Recipe
    source: str
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


def _stored(row: RecipeRow) -> StoredRecipe:
    return StoredRecipe(
        uid=row.uid,
        workspace=row.workspace_id,
        version=row.version,
        enabled=row.enabled,
        recipe=Recipe.model_validate(row.document),
        source=row.source,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlRecipeStore:
    """Recipes of every workspace; each method is scoped to the workspace it is given."""

    def __init__(self, db: Database, registry: Registry, clock: Clock) -> None:
        self._db = db
        self._registry = registry
        self._clock = clock

    def validate(self, document: Any) -> Recipe:
        recipe, details = validate_document(document, self._registry)
        if recipe is None:
            raise RecipeError(details)
        return recipe

    def create(self, workspace: str, document: Any, source: str = "api") -> StoredRecipe:
        recipe = self.validate(document)
        now = self._clock.now()
        with self._db.session() as s:
            exists = s.exec(
                select(RecipeRow).where(
                    RecipeRow.workspace_id == workspace, RecipeRow.slug == recipe.id
                )
            ).first()
            if exists is not None:
                raise ConflictError(f"a recipe with id {recipe.id!r} already exists")
            recipe.version = 1
            doc = recipe.document()
            row = RecipeRow(
                uid=new_id("rcp"),
                workspace_id=workspace,
                slug=recipe.id,
                version=1,
                enabled=recipe.enabled,
                document=doc,
                source=source,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            s.add(_version_row(row.uid, 1, doc, now))
            audit.record(
                s,
                workspace,
                "recipe",
                "created",
                recipe.id,
                now,
                summary=f"version 1 ({source})",
                diff=audit.document_diff(None, doc, recipe.id),
            )
            s.commit()
            return _stored(row)

    def upsert(self, workspace: str, document: Any, source: str) -> StoredRecipe:
        """Create, or update when the document differs from the stored one (used by loaders)."""
        recipe = self.validate(document)
        current = self.find(workspace, recipe.id)
        if current is None:
            return self.create(workspace, document, source)
        old = current.recipe.model_copy(update={"version": None}).document()
        if old == recipe.model_copy(update={"version": None}).document():
            return current
        return self.update(workspace, recipe.id, document, expected_version=None, source=source)

    def update(
        self,
        workspace: str,
        slug: str,
        document: Any,
        expected_version: int | None,
        source: str | None = None,
    ) -> StoredRecipe:
        recipe = self.validate(document)
        if recipe.id != slug:
            raise RecipeError([_detail("id", f"the id cannot change (it is {slug!r})")])
        now = self._clock.now()
        with self._db.session() as s:
            # Locked until commit: two updates at once would both write version N+1
            # (PostgreSQL; SQLite's writers are serial already).
            row = self._row(s, workspace, slug, for_update=True)
            if expected_version is not None and row.version != expected_version:
                raise ConflictError(
                    f"recipe {slug!r} is at version {row.version}, not {expected_version}: "
                    "fetch it again, reapply your change, and retry"
                )
            row.version += 1
            recipe.version = row.version
            doc = recipe.document()
            before = dict(row.document)
            action = _action(before, doc)
            row.document = doc
            row.enabled = recipe.enabled
            row.updated_at = now
            row.disabled_reason = None
            if source:
                row.source = source
            s.add(row)
            s.add(_version_row(row.uid, row.version, doc, now))
            audit.record(
                s,
                workspace,
                "recipe",
                action,
                slug,
                now,
                summary=f"version {row.version}" + (f" ({source})" if source else ""),
                diff=audit.document_diff(before, doc, slug),
            )
            s.commit()
            return _stored(row)

    def set_enabled(
        self, workspace: str, slug: str, enabled: bool, reason: str | None = None
    ) -> StoredRecipe:
        current = self.get(workspace, slug)
        doc = current.recipe.model_copy(update={"enabled": enabled}).document()
        stored = self.update(workspace, slug, doc, expected_version=None)
        if reason:
            with self._db.session() as s:
                row = self._row(s, workspace, slug)
                row.disabled_reason = reason
                s.add(row)
                s.commit()
                return _stored(row)
        return stored

    def rollback(self, workspace: str, slug: str, version: int) -> StoredRecipe:
        old = self.version(workspace, slug, version)
        return self.update(workspace, slug, old, expected_version=None)

    def delete(self, workspace: str, slug: str) -> str:
        with self._db.session() as s:
            row = self._row(s, workspace, slug)
            uid = row.uid
            s.delete(row)
            audit.record(
                s,
                workspace,
                "recipe",
                "deleted",
                slug,
                self._clock.now(),
                summary=f"at version {row.version}",
                diff=audit.document_diff(dict(row.document), None, slug),
            )
            s.commit()
            return uid

    def get(self, workspace: str, slug: str) -> StoredRecipe:
        with self._db.read_session() as s:
            return _stored(self._row(s, workspace, slug))

    def find(self, workspace: str, slug: str) -> StoredRecipe | None:
        try:
            return self.get(workspace, slug)
        except NotFoundError:
            return None

    def by_uid(self, uid: str) -> StoredRecipe | None:
        with self._db.read_session() as s:
            row = s.get(RecipeRow, uid)
            return _stored(row) if row else None

    def list(
        self,
        workspace: str | None = None,
        enabled: bool | None = None,
        limit: int = 10_000,
        after: str | None = None,
    ) -> list[StoredRecipe]:
        with self._db.read_session() as s:
            query = select(RecipeRow)
            if workspace is not None:
                query = query.where(RecipeRow.workspace_id == workspace)
            if enabled is not None:
                query = query.where(RecipeRow.enabled == enabled)
            if after is not None:
                query = query.where(RecipeRow.slug > after)
            query = query.order_by(col(RecipeRow.slug)).limit(limit)
            return [_stored(r) for r in s.exec(query).all()]

    def count(self, workspace: str) -> int:
        with self._db.read_session() as s:
            return int(
                s.exec(
                    select(func.count())
                    .select_from(RecipeRow)
                    .where(RecipeRow.workspace_id == workspace)
                ).one()
            )

    def versions(self, workspace: str, slug: str) -> builtins.list[tuple[int, datetime]]:
        with self._db.read_session() as s:
            row = self._row(s, workspace, slug)
            rows = s.exec(
                select(RecipeVersionRow)
                .where(RecipeVersionRow.recipe_uid == row.uid)
                .order_by(col(RecipeVersionRow.version))
            ).all()
            return [(r.version, r.created_at) for r in rows]

    def history(
        self, workspace: str, slug: str
    ) -> builtins.list[tuple[int, datetime, str | None, str | None]]:
        """Every version: (number, saved at, author, reason)."""
        with self._db.read_session() as s:
            row = self._row(s, workspace, slug)
            rows = s.exec(
                select(RecipeVersionRow)
                .where(RecipeVersionRow.recipe_uid == row.uid)
                .order_by(col(RecipeVersionRow.version))
            ).all()
            return [(r.version, r.created_at, r.author, r.reason) for r in rows]

    def version(self, workspace: str, slug: str, version: int) -> dict[str, Any]:
        with self._db.read_session() as s:
            row = self._row(s, workspace, slug)
            found = s.get(RecipeVersionRow, (row.uid, version))
            if found is None:
                raise NotFoundError("recipe version", f"{slug}@{version}")
            return dict(found.document)

    def diff(self, workspace: str, slug: str, a: int, b: int) -> str:
        """A unified diff of two versions' documents (as sorted, indented JSON)."""
        left = json.dumps(self.version(workspace, slug, a), indent=2, sort_keys=True).splitlines()
        right = json.dumps(self.version(workspace, slug, b), indent=2, sort_keys=True).splitlines()
        return "\n".join(
            difflib.unified_diff(left, right, f"{slug}@{a}", f"{slug}@{b}", lineterm="")
        )

    @staticmethod
    def _row(s: Any, workspace: str, slug: str, for_update: bool = False) -> RecipeRow:
        query = select(RecipeRow).where(RecipeRow.workspace_id == workspace, RecipeRow.slug == slug)
        row = s.exec(query.with_for_update() if for_update else query).first()
        if row is None:
            raise NotFoundError("recipe", slug)
        return row  # type: ignore[no-any-return]


def _version_row(uid: str, version: int, doc: dict[str, Any], now: datetime) -> RecipeVersionRow:
    actor = audit.current_actor()
    return RecipeVersionRow(
        recipe_uid=uid,
        version=version,
        document=doc,
        created_at=now,
        author=actor.who,
        reason=actor.reason,
    )


def _action(before: dict[str, Any], after: dict[str, Any]) -> str:
    """``enabled`` or ``disabled`` when that is all that changed, else ``updated``."""
    rest = ("version", "enabled")
    same = {k: v for k, v in before.items() if k not in rest} == {
        k: v for k, v in after.items() if k not in rest
    }
    if same and bool(before.get("enabled", True)) != bool(after.get("enabled", True)):
        return "enabled" if after.get("enabled", True) else "disabled"
    return "updated"


def _detail(path: str, message: str) -> Any:
    from engine.errors import ErrorDetail

    return ErrorDetail(path=path, message=message, loc=(path,))
