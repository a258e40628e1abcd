"""Upgrade the recipes made from a pack to another version of the pack: those made from its
templates, and the ready-made recipes it was installed with.

Planning changes nothing: for each recipe it carries the inputs over, remakes the recipe from
the new template (a ready-made recipe becomes the new version's recipe of the same id), and
shows the difference. Breaking changes stop the plan until they are
resolved: an input that was removed (``--map old=new`` moves its value to another input,
``--map old=`` drops it), a new required input without a default, and an input whose type
changed (``--set name=value`` gives the value). A recipe edited by hand since it was made is
not overwritten without ``force``. Applying a plan with problems is refused.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import yaml

from engine.errors import ConflictError, ErrorDetail, NotFoundError, RecipeError
from engine.model.recipe import Recipe
from engine.packs.archive import PackError
from engine.packs.install import PackService, library_digest
from engine.packs.instances import record_upgrade, split_inputs
from engine.packs.models import READY_MADE, TemplateInstanceRow
from engine.packs.pack import Pack
from engine.store.recipes import StoredRecipe
from engine.templates.inputs import InputError, coerce
from engine.templates.instantiate import instantiate
from engine.templates.template import Template


@dataclass
class RecipeUpgrade:
    """The plan for one recipe."""

    recipe: str
    template: str
    from_version: str
    to_version: str
    base_version: int
    inputs: dict[str, Any] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    problems: list[ErrorDetail] = field(default_factory=list)
    diff: str = ""
    document: dict[str, Any] | None = None


@dataclass
class UpgradePlan:
    pack: str
    to_version: str
    recipes: list[RecipeUpgrade] = field(default_factory=list)

    @property
    def problems(self) -> list[ErrorDetail]:
        return [p for r in self.recipes for p in r.problems]

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        """The plan as text: per recipe its input changes, its problems, then its diff."""
        if not self.recipes:
            return f"nothing to upgrade: every recipe made from {self.pack} is on {self.to_version}"
        lines: list[str] = []
        for item in self.recipes:
            made_from = item.template or "ready-made"
            lines.append(f"{item.recipe}: {made_from} {item.from_version} → {item.to_version}")
            lines += [f"  {change}" for change in item.changes]
            lines += [
                f"  problem: {p.path.partition(': ')[2] or p.path}: {p.message}"
                for p in item.problems
            ]
            lines += [item.diff] if item.diff else []
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        recipes = [
            {"recipe": r.recipe, "template": r.template, "from": r.from_version, "to": r.to_version}
            | {"inputs": r.inputs, "changes": r.changes, "diff": r.diff}
            | {"problems": [{"path": p.path, "message": p.message} for p in r.problems]}
            for r in self.recipes
        ]
        summary = {"pack": self.pack, "to_version": self.to_version, "ok": self.ok}
        return summary | {"recipes": recipes, "report": self.report()}


def _yaml(document: dict[str, Any]) -> list[str]:
    clean = {k: v for k, v in document.items() if k != "version"}
    return yaml.safe_dump(clean, sort_keys=False, allow_unicode=True, width=100).splitlines()


def _problem(recipe: str, path: str, message: str) -> ErrorDetail:
    return ErrorDetail(
        f"{recipe}: {path}" if path else recipe, message, loc=(recipe, *path.split("."))
    )


def _target(service: PackService, workspace: str, name: str, to: str | None) -> tuple[Pack, bool]:
    offered = [(p, i) for p, i in service.packs(workspace) if p.name == name]
    if to is not None:
        offered = [(p, i) for p, i in offered if p.version == to]
    if not offered:
        raise NotFoundError("pack", f"{name}@{to}" if to else name)
    return offered[-1]


def _old_template(
    service: PackService, workspace: str, row: TemplateInstanceRow
) -> Template | None:
    try:
        pack = service.get(workspace, row.pack_name, row.pack_version)
    except (NotFoundError, PackError):
        return None
    return pack.templates.get(row.template_id)


def _carry(
    plan: RecipeUpgrade,
    old: Template | None,
    new: Template,
    carried: dict[str, Any],
    maps: dict[str, str | None],
    sets: dict[str, Any],
) -> dict[str, Any]:
    """The inputs for the new template, with every change noted and every break a problem."""
    values = dict(carried)
    mapped: set[str] = set()
    for source, target in maps.items():
        if source in values:
            value = values.pop(source)
            if target:
                values[target] = value
                mapped.add(target)
                plan.changes.append(f"input {source!r} → {target!r}")
            else:
                plan.changes.append(f"input {source!r} dropped")
    wanted = split_inputs(sets, new)
    for name in values:
        if name not in new.inputs:
            plan.problems.append(
                _problem(
                    plan.recipe,
                    f"inputs.{name}",
                    f"removed in {plan.to_version}: move its value with --map {name}=NEW_INPUT, "
                    f"or drop it with --map {name}=",
                )
            )
    out: dict[str, Any] = {}
    for name, spec in new.inputs.items():
        path = f"inputs.{name}"
        if name in wanted:
            value, how = wanted[name], "set"
        elif name in values:
            before = old.inputs.get(name) if old else None
            if before is not None and before.type != spec.type and name not in mapped:
                message = (
                    f"type changed from {before.type.value} to {spec.type.value}: "
                    f"give a value with --set {name}=VALUE"
                )
                plan.problems.append(_problem(plan.recipe, path, message))
                continue
            value, how = values[name], "kept"
        elif spec.default is not None:
            value, how = spec.default, "new, default"
        else:
            message = f"new in {plan.to_version}, with no default: give it with --set {name}=VALUE"
            plan.problems.append(_problem(plan.recipe, path, message))
            continue
        try:
            out[name] = coerce(spec, value)
        except InputError as exc:
            plan.problems.append(_problem(plan.recipe, path, f"{exc} (the {how} value {value!r})"))
            continue
        if how != "kept" or (name not in mapped and out[name] != carried.get(name)):
            plan.changes.append(f"input {name!r} = {out[name]!r} ({how})")
    return out


def _edited(
    service: PackService, old: Template, row: TemplateInstanceRow, current: StoredRecipe
) -> bool:
    try:
        made = instantiate(
            old,
            row.inputs,
            service.registry,
            recipe_id=row.recipe_slug,
            name=row.name,
            store=row.store,
        )
    except RecipeError:
        return True
    expected = made.recipe.model_copy(update={"version": None, "enabled": True}).document()
    actual = current.recipe.model_copy(update={"version": None, "enabled": True}).document()
    return expected != actual


def _plan_one(
    service: PackService,
    workspace: str,
    row: TemplateInstanceRow,
    target: Pack,
    maps: dict[str, str | None],
    sets: dict[str, Any],
    force: bool,
) -> RecipeUpgrade | None:
    current = service.recipes.find(workspace, row.recipe_slug)
    if current is None or current.uid != row.recipe_uid:
        return None  # deleted (or made again by hand) since: nothing of this template to upgrade
    plan = RecipeUpgrade(
        row.recipe_slug, row.template_id, row.pack_version, target.version, current.version
    )
    if row.template_id == READY_MADE:
        return _plan_ready_made(service, workspace, row, target, current, plan, force)
    new = target.templates.get(row.template_id)
    if new is None:
        plan.problems.append(
            _problem(
                row.recipe_slug, "", f"{target.ref} no longer has template {row.template_id!r}"
            )
        )
        return plan
    old = _old_template(service, workspace, row)
    if old is not None and not force and _edited(service, old, row, current):
        message = "edited by hand since it was made from the template: --force replaces those edits"
        plan.problems.append(_problem(row.recipe_slug, "", message))
    plan.inputs = _carry(plan, old, new, row.inputs, maps, sets)
    if plan.problems:
        return plan
    try:
        made = instantiate(
            new,
            plan.inputs,
            service.registry,
            recipe_id=row.recipe_slug,
            name=row.name,
            store=row.store,
        )
    except RecipeError as exc:
        plan.problems += [_problem(row.recipe_slug, d.path, d.message) for d in exc.details]
        return plan
    _finish(plan, current, made.recipe, row.pack_version)
    return plan


def _finish(plan: RecipeUpgrade, current: StoredRecipe, made: Recipe, from_version: str) -> None:
    """Give ``plan`` the new document (enabled as the recipe is now) and its diff."""
    document = made.model_copy(update={"enabled": current.enabled}).document()
    plan.document = document
    before, after = _yaml(current.recipe.document()), _yaml(document)
    label = plan.recipe
    plan.diff = "\n".join(
        difflib.unified_diff(
            before,
            after,
            f"{label} ({from_version})",
            f"{label} ({plan.to_version})",
            lineterm="",
        )
    )


def _bare(recipe: Recipe) -> dict[str, Any]:
    return recipe.model_copy(update={"version": None, "enabled": True}).document()


def _plan_ready_made(
    service: PackService,
    workspace: str,
    row: TemplateInstanceRow,
    target: Pack,
    current: StoredRecipe,
    plan: RecipeUpgrade,
    force: bool,
) -> RecipeUpgrade:
    """The plan for one of a pack's ready-made recipes: the recipe of the same id in the new
    version, unless the one installed was edited by hand since (``force`` replaces it)."""
    plan.template = ""
    new = next((r for r in target.recipes if r.id == row.recipe_slug), None)
    if new is None:
        message = f"{target.ref} no longer has the ready-made recipe {row.recipe_slug!r}"
        plan.problems.append(_problem(row.recipe_slug, "", message))
        return plan
    try:
        old_pack: Pack | None = service.get(workspace, row.pack_name, row.pack_version)
    except (NotFoundError, PackError):
        old_pack = None
    old = next((r for r in old_pack.recipes if r.id == row.recipe_slug), None) if old_pack else None
    if old is not None and not force and _bare(old) != _bare(current.recipe):
        message = "edited by hand since the pack installed it: --force replaces those edits"
        plan.problems.append(_problem(row.recipe_slug, "", message))
        return plan
    _finish(plan, current, new, row.pack_version)
    return plan


def plan_upgrade(
    service: PackService,
    workspace: str,
    pack: str,
    *,
    to: str | None = None,
    maps: dict[str, str | None] | None = None,
    sets: dict[str, Any] | None = None,
    recipes: list[str] | None = None,
    force: bool = False,
    target: Pack | None = None,
) -> UpgradePlan:
    """What upgrading the recipes made from ``pack`` to version ``to`` (default: the newest
    offered, installed or in the library) would do. Changes nothing. ``target`` is the new
    version itself when it is not offered in ``workspace`` (an agency's pack, not shared yet)."""
    if target is None:
        target, _ = _target(service, workspace, pack, to)
    plan = UpgradePlan(pack, target.version)
    for row in service.instances(workspace, pack):
        if row.pack_version == target.version or (
            recipes is not None and row.recipe_slug not in recipes
        ):
            continue
        one = _plan_one(service, workspace, row, target, maps or {}, sets or {}, force)
        if one is not None:
            plan.recipes.append(one)
    return plan


def apply_upgrade(service: PackService, workspace: str, plan: UpgradePlan) -> list[StoredRecipe]:
    """Carry out a plan without problems; a recipe changed since the plan was made is a conflict."""
    if not plan.ok:
        raise RecipeError(plan.problems)
    if not plan.recipes:
        return []
    target, installed = _target(service, workspace, plan.pack, plan.to_version)
    if not installed:
        service.install_pack(workspace, target, library_digest(target), f"library:{target.ref}")
    done: list[StoredRecipe] = []
    for item in plan.recipes:
        assert item.document is not None
        ready_made = item.template == READY_MADE
        source = f"pack:{target.ref}" if ready_made else f"template:{target.ref}/{item.template}"
        try:
            stored = service.recipes.update(
                workspace, item.recipe, item.document, item.base_version, source
            )
        except ConflictError as exc:
            raise ConflictError(
                f"{exc} (nothing after {item.recipe} was upgraded; plan again)"
            ) from None
        record_upgrade(service, workspace, item.recipe, target.version, item.inputs)
        service.notify(stored)
        done.append(stored)
    return done
