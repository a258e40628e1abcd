"""Recipes made from templates: made, saved with a record of their template, pack version and
inputs, made for many stores at once, and noted again when an upgrade remakes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import ErrorDetail, NotFoundError, RecipeError
from engine.packs.archive import PackError
from engine.packs.install import PackService, TemplateEntry
from engine.packs.models import TemplateInstanceRow
from engine.packs.pack import Pack
from engine.store.recipes import StoredRecipe
from engine.templates.instantiate import Instance, instantiate
from engine.templates.template import Template


@dataclass
class Made:
    """A recipe made from a template (``stored`` is ``None`` on a dry run)."""

    instance: Instance
    pack: Pack
    stored: StoredRecipe | None = None


def split_inputs(given: dict[str, Any], template: Template) -> dict[str, Any]:
    """The values meant for ``template``: ``name=value`` for every template with that input,
    ``template.name=value`` for one template only."""
    out: dict[str, Any] = {}
    for key, value in given.items():
        owner, _, name = key.rpartition(".")
        if owner and owner != template.id:
            continue
        if name in template.inputs or owner == template.id:
            out[name] = value
    return out


def make_recipe(
    service: PackService,
    workspace: str,
    ref: str,
    inputs: dict[str, Any],
    *,
    recipe_id: str | None = None,
    name: str | None = None,
    store: str | None = None,
    save: bool = True,
) -> Made:
    """Make a recipe from the template ``ref`` (``pack/template``, ``pack@1.2.0/template``) and
    save it, unless ``save`` is false (a preview)."""
    entry = service.find(workspace, ref)
    instance = instantiate(
        entry.template, inputs, service.registry, recipe_id=recipe_id, name=name, store=store
    )
    made = Made(instance, entry.pack)
    if save:
        service.ensure_installed(workspace, entry)
        made.stored = _save(service, workspace, made, store=store, name=name)
    return made


def _entries(
    service: PackService, workspace: str, pack_ref: str, templates: list[str] | None
) -> list[TemplateEntry]:
    name, _, version = pack_ref.partition("@")
    entries = [
        e
        for e in service.templates(workspace, every_version=True)
        if e.pack.name == name and (not version or e.pack.version == version)
    ]
    if not entries:
        raise NotFoundError("pack", pack_ref)
    newest = max(e.pack.manifest.semver for e in entries)
    current = [e for e in entries if e.pack.manifest.semver == newest]
    unknown = sorted(set(templates or ()) - {e.template.id for e in current})
    if unknown:
        missing, have = ", ".join(unknown), ", ".join(sorted(e.template.id for e in current))
        where = ("templates",)
        detail = ErrorDetail(
            "templates", f"not in pack {name}: {missing} (it has {have})", loc=where
        )
        raise PackError(f"pack {name} has no template {missing}", [detail])
    return [e for e in current if templates is None or e.template.id in templates]


def make_for_stores(
    service: PackService,
    workspace: str,
    pack_ref: str,
    stores: list[str],
    inputs: dict[str, Any],
    templates: list[str] | None = None,
) -> list[Made]:
    """Make a pack's templates (all, or the ones named) into recipes for each store; nothing
    is saved unless every one of them is valid and new."""
    entries = _entries(service, workspace, pack_ref, templates)
    made: list[Made] = []
    errors: list[ErrorDetail] = []
    for store in stores:
        for entry in entries:
            where, at = f"{entry.template.id}@{store}", (entry.template.id, store)
            values = split_inputs(inputs, entry.template)
            try:
                instance = instantiate(entry.template, values, service.registry, store=store)
            except RecipeError as exc:
                errors += [
                    ErrorDetail(f"{where}.{d.path}", d.message, loc=(*at, *d.loc))
                    for d in exc.details
                ]
                continue
            if service.recipes.find(workspace, instance.recipe.id) is not None:
                message = f"a recipe with id {instance.recipe.id!r} already exists"
                errors.append(ErrorDetail(where, message, loc=at))
            made.append(Made(instance, entry.pack))
    if errors:
        raise RecipeError(errors)
    for entry in {e.pack.ref: e for e in entries}.values():
        service.ensure_installed(workspace, entry)
    for item, store in zip(made, [s for s in stores for _ in entries], strict=True):
        item.stored = _save(service, workspace, item, store=store, name=None)
    return made


def _save(
    service: PackService, workspace: str, made: Made, *, store: str | None, name: str | None
) -> StoredRecipe:
    template, pack = made.instance.template, made.pack
    source = f"template:{pack.ref}/{template.id}"
    stored = service.recipes.create(workspace, made.instance.document(), source=source)
    now = service.clock.now()
    try:
        with service.db.session() as s:
            s.merge(  # a row left by a recipe deleted since is replaced
                TemplateInstanceRow(
                    workspace_id=workspace,
                    recipe_slug=stored.recipe.id,
                    recipe_uid=stored.uid,
                    pack_name=pack.name,
                    pack_version=pack.version,
                    template_id=template.id,
                    inputs=made.instance.values,
                    store=store if store != "*" else None,
                    name=name,
                    created_at=now,
                    updated_at=now,
                )
            )
            s.commit()
    except Exception:
        service.recipes.delete(workspace, stored.recipe.id)
        raise
    service.notify(stored)
    return stored


def record_upgrade(
    service: PackService, workspace: str, slug: str, version: str, inputs: dict[str, Any]
) -> None:
    """Note that a recipe was remade from another version of its pack, with these inputs."""
    with service.db.session() as s:
        row = s.get(TemplateInstanceRow, (workspace, slug))
        if row is None:
            raise NotFoundError("template instance", slug)
        row.pack_version = version
        row.inputs = inputs
        row.updated_at = service.clock.now()
        s.add(row)
        s.commit()
