"""Installed packs and the recipes made from their templates, per workspace.

A workspace holds any number of pack versions side by side (``backorders@1.0.0`` and
``backorders@1.1.0``), each stored whole in the database. Templates are found in installed packs
and in the library Sous ships (``recipes/packs``); instantiating a library template installs
its pack version first, so every recipe made from a template points at a pack version the
workspace keeps — which is what an upgrade compares against.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import func
from sqlmodel import col, select

from engine.clock import Clock
from engine.errors import ConflictError, ErrorDetail, NotFoundError
from engine.packs.archive import (
    PackError,
    PackFiles,
    build_archive,
    check_sha256,
    read_archive,
    read_folder,
    read_source,
    sha256,
)
from engine.packs.manifest import Version
from engine.packs.models import READY_MADE, InstalledPackRow, TemplateInstanceRow
from engine.packs.pack import Pack, load_pack
from engine.registry import Registry
from engine.store import audit
from engine.store.db import Database
from engine.store.recipes import SqlRecipeStore, StoredRecipe
from engine.templates.template import Template

_REF = re.compile(
    r"^(?:(?P<pack>[a-z0-9][a-z0-9_-]*)(?:@(?P<version>[0-9A-Za-z.+-]+))?/)?(?P<template>[a-z0-9][a-z0-9_-]*)$"
)


def default_library() -> Path | None:
    """The template library shipped with Sous (``recipes/packs``, installed as package data)."""
    from recipes import library_folder

    return library_folder("packs")


def _declared_name(folder: Path) -> str:
    """The name a library folder's ``pack.yaml`` gives, else the folder's own name."""
    try:
        data = yaml.safe_load((folder / "pack.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else folder.name


def library_digest(pack: Pack) -> str:
    """A library pack's SHA-256: that of the archive ``sous packs build`` makes of it."""
    return sha256(build_archive(pack.files, f"{pack.name}-{pack.version}"))


@dataclass(frozen=True)
class TemplateEntry:
    """A template offered to a workspace, with the pack version it comes from."""

    pack: Pack
    template: Template
    installed: bool

    @property
    def ref(self) -> str:
        return f"{self.pack.name}/{self.template.id}"

    def summary(self) -> dict[str, Any]:
        template = self.template
        return {"ref": self.ref, "pack": self.pack.name, "version": self.pack.version} | {
            "installed": self.installed,
            "id": template.id,
            "name": template.name,
            "description": template.description,
            "tags": template.tags,
            "trigger": template.trigger,
            "actions": template.actions,
        }


@dataclass
class Installed:
    pack: Pack
    sha256: str
    new: bool
    recipes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class PackService:
    def __init__(
        self,
        db: Database,
        registry: Registry,
        clock: Clock,
        *,
        library: Path | None = None,
        transport: httpx.BaseTransport | None = None,
        on_change: Callable[[StoredRecipe], None] | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.clock = clock
        self.recipes = SqlRecipeStore(db, registry, clock)
        self.library_path = library
        self.transport = transport
        self.on_change = on_change
        self.library_errors: list[ErrorDetail] = []
        self._library: dict[tuple[str, str], Pack] | None = None
        self._unusable: dict[str, PackError] = {}
        self._cache: dict[tuple[str, str, str, str], Pack] = {}

    # -- reading --------------------------------------------------------------------------
    def read(self, source: str | Path, pin: str | None = None) -> tuple[Pack, str, str]:
        """A pack from a folder, archive or https URL, checked: (pack, sha256, origin)."""
        found = read_source(source, pin=pin, transport=self.transport)
        return load_pack(found.files, self.registry), found.sha256, found.origin

    def library(self) -> dict[tuple[str, str], Pack]:
        """The shipped packs by (name, version); failures go to ``library_errors``."""
        if self._library is None:
            self._library = {}
            folders = (
                sorted(p.parent for p in self.library_path.glob("*/pack.yaml"))
                if self.library_path
                else []
            )
            for folder in folders:
                try:
                    pack = load_pack(read_folder(folder), self.registry)
                except PackError as exc:
                    self._unusable[_declared_name(folder)] = exc
                    self.library_errors += exc.details or [
                        ErrorDetail("", exc.message, file=str(folder))
                    ]
                    continue
                self._library[(pack.name, pack.version)] = pack
        return self._library

    def library_pack(self, ref: str) -> Pack:
        """A shipped pack by ``name`` (its newest version) or ``name@version``."""
        name, _, version = ref.partition("@")
        found = [p for (n, v), p in self.library().items() if n == name and version in ("", v)]
        if not found and name in self._unusable:
            raise self._unusable[name]
        if not found:
            raise NotFoundError("pack in the library", ref)
        return max(found, key=lambda p: p.manifest.semver)

    # -- installed packs ------------------------------------------------------------------
    def install(
        self, workspace: str, source: str | Path, *, pin: str | None = None, recipes: bool = False
    ) -> Installed:
        """Install from a folder, an archive file, an https URL, or the library (by name)."""
        text = str(source)
        if (
            "://" not in text
            and not Path(text).exists()
            and re.match(r"^[a-z0-9][a-z0-9_@.+-]*$", text)
        ):
            pack = self.library_pack(text)
            if pin:
                check_sha256(build_archive(pack.files, f"{pack.name}-{pack.version}"), pin)
            return self.install_pack(
                workspace, pack, library_digest(pack), f"library:{pack.ref}", recipes=recipes
            )
        pack, digest, origin = self.read(source, pin)
        return self.install_pack(workspace, pack, digest, origin, recipes=recipes)

    def install_archive(
        self,
        workspace: str,
        data: bytes,
        *,
        pin: str | None = None,
        recipes: bool = False,
        origin: str = "upload",
    ) -> Installed:
        """Install from the bytes of a ``.tar.gz`` or ``.zip`` (an upload)."""
        digest = check_sha256(data, pin) if pin else sha256(data)
        pack = load_pack(read_archive(data), self.registry)
        return self.install_pack(workspace, pack, digest, origin, recipes=recipes)

    def install_pack(
        self, workspace: str, pack: Pack, digest: str, origin: str, *, recipes: bool = False
    ) -> Installed:
        with self.db.session() as s:
            row = s.get(InstalledPackRow, (workspace, pack.name, pack.version))
            if row is not None and row.sha256 != digest:
                raise ConflictError(
                    f"{pack.ref} is already installed with different contents "
                    f"(sha256 {row.sha256[:12]}…); "
                    "give the new one another version, or uninstall the old one first"
                )
            new = row is None
            if new:
                s.add(
                    InstalledPackRow(
                        workspace_id=workspace,
                        name=pack.name,
                        version=pack.version,
                        description=pack.manifest.description,
                        sha256=digest,
                        source=origin[:1000],
                        manifest=pack.manifest.model_dump(mode="json", exclude_none=True),
                        files=pack.files.texts(),
                        installed_at=self.clock.now(),
                    )
                )
                audit.record(
                    s,
                    workspace,
                    "pack",
                    "installed",
                    pack.ref,
                    self.clock.now(),
                    summary=f"from {origin[:200]} (sha256 {digest[:12]}…)",
                )
                s.commit()
        result = Installed(pack, digest, new)
        if recipes:
            for recipe in pack.recipes:
                if self.recipes.find(workspace, recipe.id) is not None:
                    result.skipped.append(recipe.id)
                    continue
                stored = self.recipes.create(
                    workspace, recipe.document(), source=f"pack:{pack.ref}"
                )
                self._record_ready_made(workspace, pack, stored)
                self.notify(stored)
                result.recipes.append(recipe.id)
        return result

    def _record_ready_made(self, workspace: str, pack: Pack, stored: StoredRecipe) -> None:
        """Note that a ready-made recipe of ``pack`` was created, so that an upgrade of the
        pack reaches it (and the pack's listing counts it), like a recipe made from a template."""
        now = self.clock.now()
        with self.db.session() as s:
            s.merge(  # a row left by a recipe deleted since is replaced
                TemplateInstanceRow(
                    workspace_id=workspace,
                    recipe_slug=stored.recipe.id,
                    recipe_uid=stored.uid,
                    pack_name=pack.name,
                    pack_version=pack.version,
                    template_id=READY_MADE,
                    inputs={},
                    created_at=now,
                    updated_at=now,
                )
            )
            s.commit()

    def installed(self, workspace: str) -> list[InstalledPackRow]:
        with self.db.read_session() as s:
            rows = s.exec(
                select(InstalledPackRow).where(InstalledPackRow.workspace_id == workspace)
            ).all()
        return sorted(rows, key=lambda r: (r.name, Version.parse(r.version)))

    def listing(self, workspace: str) -> list[dict[str, Any]]:
        """Installed pack versions (with how many recipes were made from each), then library
        packs not installed, as JSON."""
        rows = self.installed(workspace)
        made = self.made_counts(workspace)
        listing = [
            {"name": r.name, "version": r.version, "installed": True}
            | {"recipes": made.get((r.name, r.version), 0), "description": r.description}
            | {"sha256": r.sha256, "source": r.source, "installed_at": r.installed_at.isoformat()}
            for r in rows
        ]
        have = {(r.name, r.version) for r in rows}
        listing += [
            {"name": p.name, "version": p.version, "installed": False, "recipes": 0}
            | {"description": p.manifest.description}
            for key, p in sorted(self.library().items())
            if key not in have
        ]
        return listing

    def made_counts(self, workspace: str) -> dict[tuple[str, str], int]:
        """How many recipes were made from each pack version: (name, version) → count."""
        instance = TemplateInstanceRow
        with self.db.read_session() as s:
            rows = s.exec(
                select(instance.pack_name, instance.pack_version, func.count())
                .where(instance.workspace_id == workspace)
                .group_by(col(instance.pack_name), col(instance.pack_version))
            ).all()
        return {(name, version): int(count) for name, version, count in rows}

    def get(self, workspace: str, name: str, version: str | None = None) -> Pack:
        """An installed pack version (the newest when ``version`` is ``None``)."""
        rows = [
            r
            for r in self.installed(workspace)
            if r.name == name and (version is None or r.version == version)
        ]
        if not rows:
            raise NotFoundError("installed pack", f"{name}@{version}" if version else name)
        row = rows[-1]
        key = (workspace, row.name, row.version, row.sha256)
        if key not in self._cache:
            self._cache[key] = load_pack(PackFiles.from_texts(row.files), self.registry)
        return self._cache[key]

    def uninstall(
        self,
        workspace: str,
        name: str,
        version: str,
        *,
        delete_recipes: bool = False,
        force: bool = False,
    ) -> list[str]:
        """Remove a pack version. Recipes made from it block this unless ``delete_recipes``
        (they go too) or ``force`` (they stay, and can no longer be upgraded from it)."""
        made = [i for i in self.instances(workspace, name) if i.pack_version == version]
        if made and not (delete_recipes or force):
            slugs = ", ".join(i.recipe_slug for i in made)
            raise ConflictError(
                f"recipes were made from {name}@{version}: {slugs}; "
                "upgrade them first, or pass --delete-recipes (delete them) or --force (keep them)"
            )
        deleted = []
        with self.db.session() as s:
            row = s.get(InstalledPackRow, (workspace, name, version))
            if row is None:
                raise NotFoundError("installed pack", f"{name}@{version}")
            s.delete(row)
            audit.record(s, workspace, "pack", "uninstalled", f"{name}@{version}", self.clock.now())
            for instance in made:
                found = s.get(TemplateInstanceRow, (workspace, instance.recipe_slug))
                if delete_recipes and found is not None:
                    s.delete(found)
            s.commit()
        if delete_recipes:
            for instance in made:
                if self.recipes.find(workspace, instance.recipe_slug) is not None:
                    self.recipes.delete(workspace, instance.recipe_slug)
                    deleted.append(instance.recipe_slug)
        return deleted

    # -- templates ------------------------------------------------------------------------
    def packs(self, workspace: str) -> list[tuple[Pack, bool]]:
        """Every pack version offered: installed ones, and library ones not installed."""
        offered: dict[tuple[str, str], tuple[Pack, bool]] = {}
        for row in self.installed(workspace):
            try:
                offered[(row.name, row.version)] = (
                    self.get(workspace, row.name, row.version),
                    True,
                )
            except PackError:
                continue  # an installed pack this Sous can no longer read: `packs list` says so
        for key, pack in self.library().items():
            offered.setdefault(key, (pack, False))
        return sorted(offered.values(), key=lambda p: (p[0].name, p[0].manifest.semver))

    def templates(self, workspace: str, *, every_version: bool = False) -> list[TemplateEntry]:
        newest: dict[str, tuple[Pack, bool]] = {}
        entries = []
        for pack, installed in self.packs(workspace):
            if every_version:
                entries += [TemplateEntry(pack, t, installed) for t in pack.templates.values()]
            newest[pack.name] = (pack, installed)
        if every_version:
            return entries
        return [TemplateEntry(p, t, i) for p, i in newest.values() for t in p.templates.values()]

    def find(self, workspace: str, ref: str) -> TemplateEntry:
        """``pack/template``, ``pack@1.2.0/template``, or a template id found in one pack only."""
        match = _REF.match(ref.strip())
        if match is None:
            raise NotFoundError("template", ref)
        pack_name, version, template_id = match["pack"], match["version"], match["template"]
        candidates = [
            (p, i)
            for p, i in self.packs(workspace)
            if (pack_name is None or p.name == pack_name)
            and (version is None or p.version == version)
            and template_id in p.templates
        ]
        if not candidates:
            raise NotFoundError("template", ref)
        if pack_name is None and len({p.name for p, _ in candidates}) > 1:
            names = ", ".join(sorted({f"{p.name}/{template_id}" for p, _ in candidates}))
            raise ConflictError(
                f"several packs have a template {template_id!r}: say which ({names})"
            )
        pack, installed = candidates[-1]
        return TemplateEntry(pack, pack.templates[template_id], installed)

    # -- instances ------------------------------------------------------------------------
    def instances(self, workspace: str, pack: str | None = None) -> list[TemplateInstanceRow]:
        with self.db.read_session() as s:
            query = select(TemplateInstanceRow).where(TemplateInstanceRow.workspace_id == workspace)
            if pack is not None:
                query = query.where(TemplateInstanceRow.pack_name == pack)
            return list(s.exec(query.order_by(col(TemplateInstanceRow.recipe_slug))).all())

    def ensure_installed(self, workspace: str, entry: TemplateEntry) -> None:
        if not entry.installed:
            pack = entry.pack
            self.install_pack(workspace, pack, library_digest(pack), f"library:{pack.ref}")

    def notify(self, stored: StoredRecipe) -> None:
        if self.on_change is not None:
            self.on_change(stored)
