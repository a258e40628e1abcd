"""A pack's contents, read and checked: its manifest, templates, ready-made recipes and README.

::

    backorders/
      pack.yaml             name, version, description, author, license, sous, connectors
      README.md
      templates/*.yaml      recipe templates (with inputs)
      recipes/*.yaml        ready-made recipes

Everything is data: YAML is read with the safe loader (JSON is YAML), nothing runs. A pack is
usable only if its manifest is valid, this Sous is in its ``sous`` range, every connector it
needs is here, and every template and recipe in it passes validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.authoring.loader import parse_yaml
from engine.authoring.validation import validate_document
from engine.errors import ErrorDetail
from engine.model.recipe import Recipe, step_uses
from engine.packs.archive import PackError, PackFiles
from engine.packs.manifest import PackManifest, Version, parse_manifest
from engine.registry import Registry
from engine.templates.template import Template, load_template_text

_DATA = (".yaml", ".yml", ".json")


@dataclass
class Pack:
    manifest: PackManifest
    templates: dict[str, Template] = field(default_factory=dict)
    recipes: list[Recipe] = field(default_factory=list)
    readme: str = ""
    files: PackFiles = field(default_factory=PackFiles)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def ref(self) -> str:
        return self.manifest.ref

    def summary(self, digest: str | None = None) -> dict[str, Any]:
        """What the pack holds, as JSON: manifest, templates, ready-made recipes, files."""
        templates = [
            {"id": t.id, "name": t.name, "description": t.description, "tags": t.tags}
            | {"trigger": t.trigger, "actions": t.actions, "inputs": list(t.inputs)}
            for t in self.templates.values()
        ]
        recipes = [{"id": r.id, "name": r.name, "trigger": r.trigger.type} for r in self.recipes]
        manifest = self.manifest.model_dump(mode="json", exclude_none=True)
        return manifest | {
            "sha256": digest,
            "templates": templates,
            "recipes": recipes,
            "files": sorted(self.files.files),
        }

    def template(self, template_id: str) -> Template:
        try:
            return self.templates[template_id]
        except KeyError:
            known = ", ".join(sorted(self.templates)) or "none"
            raise PackError(
                f"{self.ref} has no template {template_id!r} (it has: {known})"
            ) from None


def connector_names(registry: Registry) -> dict[str, str]:
    """Trigger types and action names → the connector that provides them."""
    owners: dict[str, str] = {}
    for connector in registry.connectors.values():
        for trigger in connector.triggers:
            owners[trigger.type] = connector.name
        for action in connector.actions:
            owners[action.name] = connector.name
    return owners


def connectors_used(documents: list[dict[str, object]], registry: Registry) -> set[str]:
    owners = connector_names(registry)
    used: set[str] = set()
    for doc in documents:
        trigger = doc.get("trigger")
        names = [trigger.get("type")] if isinstance(trigger, dict) else []
        names += step_uses(doc.get("actions", doc.get("steps", [])))
        for name in names:
            if not isinstance(name, str):
                continue
            wildcard = name.rsplit(".", 1)[0] + ".*"
            owner = owners.get(name) or owners.get(wildcard)
            if owner:
                used.add(owner)
    return used


def _recipes(
    files: PackFiles, label: str, registry: Registry
) -> tuple[list[Recipe], list[ErrorDetail]]:
    recipes: list[Recipe] = []
    errors: list[ErrorDetail] = []
    seen: set[str] = set()
    for path in files.under("recipes"):
        if not path.endswith(_DATA):
            continue
        docs, problems = parse_yaml(files.text(path), f"{label}/{path}")
        errors += problems
        for document, lines in docs:
            recipe, details = validate_document(document, registry)
            for d in details:
                line = next(
                    (lines[d.loc[:n]] for n in range(len(d.loc), -1, -1) if d.loc[:n] in lines),
                    None,
                )
                errors.append(
                    ErrorDetail(d.path, d.message, file=f"{label}/{path}", line=line, loc=d.loc)
                )
            if recipe is None:
                continue
            if recipe.id in seen:
                errors.append(
                    ErrorDetail(
                        "id", f"recipe id {recipe.id!r} is used twice", file=f"{label}/{path}"
                    )
                )
                continue
            seen.add(recipe.id)
            recipes.append(recipe)
    return recipes, errors


def load_pack(files: PackFiles, registry: Registry, *, running: Version | None = None) -> Pack:
    """Read and check a pack; a :class:`PackError` lists every problem found."""
    if "pack.yaml" not in files.files:
        raise PackError("not a pack: no pack.yaml")
    manifest, errors = parse_manifest(files.text("pack.yaml"), "pack.yaml")
    if manifest is None:
        raise PackError("invalid pack.yaml", errors)
    label = manifest.ref
    reason = manifest.incompatibility(running)
    if reason:
        raise PackError(f"incompatible pack: {reason}")
    missing = sorted(set(manifest.connectors) - set(registry.connectors))
    if missing:
        have = ", ".join(sorted(registry.connectors))
        raise PackError(
            f"{label} needs connector(s) {', '.join(missing)}, "
            f"which this Sous does not have ({have})"
        )
    pack = Pack(manifest, files=files)
    if "README.md" in files.files:
        pack.readme = files.text("README.md")
    else:
        errors.append(ErrorDetail("", "a pack needs a README.md", file=f"{label}/README.md"))
    for path in files.under("templates"):
        if not path.endswith(_DATA):
            continue
        templates, problems = load_template_text(files.text(path), f"{label}/{path}", registry)
        errors += problems
        for template in templates:
            if template.id in pack.templates:
                errors.append(
                    ErrorDetail(
                        "id", f"template id {template.id!r} is used twice", file=f"{label}/{path}"
                    )
                )
            pack.templates[template.id] = template
    pack.recipes, problems = _recipes(files, label, registry)
    errors += problems
    documents = [t.body for t in pack.templates.values()] + [r.document() for r in pack.recipes]
    undeclared = sorted(connectors_used(documents, registry) - set(manifest.connectors) - {"core"})
    if undeclared:
        errors.append(
            ErrorDetail(
                "connectors",
                f"used but not listed in pack.yaml: {', '.join(undeclared)}",
                file=f"{label}/pack.yaml",
                loc=("connectors",),
            )
        )
    if errors:
        raise PackError(f"{label} has {len(errors)} problem(s)", errors)
    return pack
