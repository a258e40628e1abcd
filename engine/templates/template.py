"""Recipe templates: a recipe document with an ``inputs:`` block, loaded and checked from YAML.

::

    id: low-stock-warning
    name: Warn staff when stock runs low
    tags: [catalog]
    inputs:
      threshold:
        type: integer
        label: Warn at or below
        min: 1
        default: 5
      staff:
        type: emails
        default: [staff@example.com]
    trigger:
      type: bigcommerce.product.low_stock
    conditions:
      - {"<=": [{"var": "product.inventory_level"}, "[[ inputs.threshold ]]"]}
    actions:
      - use: email.send
        with:
          to: "[[ inputs.staff ]]"
          subject: "{{ product.name }} is down to {{ product.inventory_level }}"

Loading checks, with file, line and field path for each problem: the inputs (types,
constraints, defaults and examples that fit them), every placeholder (it reads a declared input,
in a place that may hold one), that every input is used, and that the recipe the template makes
with sample values passes :func:`~engine.authoring.validation.validate_document`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.authoring.loader import MAX_FILE_BYTES, parse_yaml
from engine.authoring.validation import Loc, format_loc
from engine.errors import ErrorDetail
from engine.model.recipe import SLUG, step_uses
from engine.packs.manifest import check_manifest_file
from engine.registry import Registry
from engine.templates.inputs import InputSpec
from engine.templates.placeholders import scan
from engine.templates.schema import inputs_schema

TEMPLATE_KEYS = ("inputs", "tags")
"""Keys a template has beyond those of a recipe."""


@dataclass
class Template:
    """A loaded, checked template. ``body`` is the recipe document, placeholders and all."""

    id: str
    name: str
    description: str
    tags: list[str]
    inputs: dict[str, InputSpec]
    body: dict[str, Any]
    file: str = ""
    lines: dict[Loc, int] = field(default_factory=dict, repr=False)

    @property
    def trigger(self) -> str:
        return str(self.body.get("trigger", {}).get("type", ""))

    @property
    def actions(self) -> list[str]:
        """The actions its steps use, those inside ``for_each`` and ``parallel`` too, once each."""
        steps = self.body.get("actions", self.body.get("steps", []))
        return list(dict.fromkeys(step_uses(steps)))

    def schema(self) -> dict[str, Any]:
        """The inputs as a JSON Schema (draft 2020-12) a front end renders as a form."""
        return inputs_schema(self.inputs, title=self.name, description=self.description)

    def samples(self) -> dict[str, Any]:
        """A valid value for every input: its default, else its example, else a stand-in."""
        return {name: spec.sample() for name, spec in self.inputs.items()}

    def document(self) -> dict[str, Any]:
        """The template as written: the body with its ``inputs`` and ``tags``."""
        inputs = {
            name: spec.model_dump(
                mode="json", exclude_none=True, exclude_defaults=True, exclude={"name"}
            )
            | {"type": spec.type.value}
            for name, spec in self.inputs.items()
        }
        doc = dict(self.body)
        if self.tags:
            doc["tags"] = list(self.tags)
        doc["inputs"] = inputs
        return doc

    def line(self, loc: Loc) -> int | None:
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None


def _problem(file: str, lines: dict[Loc, int], loc: Loc, message: str) -> ErrorDetail:
    line = None
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            line = lines[loc[:end]]
            break
    return ErrorDetail(format_loc(loc), message, file=file or None, line=line, loc=loc)


def _inputs(
    raw: Any, file: str, lines: dict[Loc, int]
) -> tuple[dict[str, InputSpec], set[str], list[ErrorDetail]]:
    """The inputs declared well, the names of those declared badly, and the problems."""
    if raw is None:
        return {}, set(), []
    if not isinstance(raw, dict):
        return (
            {},
            set(),
            [
                _problem(
                    file,
                    lines,
                    ("inputs",),
                    "inputs must be a mapping of input name to its settings",
                )
            ],
        )
    specs: dict[str, InputSpec] = {}
    failed: set[str] = set()
    errors: list[ErrorDetail] = []
    for name, settings in raw.items():
        loc: Loc = ("inputs", str(name))
        data = dict(settings) if isinstance(settings, dict) else settings
        if isinstance(data, dict):
            data["name"] = name
        try:
            spec = InputSpec.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                where = loc + tuple(error["loc"])
                message = str(error["msg"])
                errors.append(_problem(file, lines, where, message[0].lower() + message[1:]))
            failed.add(str(name))
            continue
        for field_name, message in spec.check_defaults():
            errors.append(_problem(file, lines, (*loc, field_name), message))
        specs[str(name)] = spec
    return specs, failed, errors


def parse_template(
    document: Any, lines: dict[Loc, int], file: str, registry: Registry | None
) -> tuple[Template | None, list[ErrorDetail]]:
    """Check one template document; with a registry, also check the recipe it makes."""
    if not isinstance(document, dict):
        return None, [
            _problem(file, lines, (), "a template is a mapping (a recipe with an inputs block)")
        ]
    errors: list[ErrorDetail] = []
    template_id = document.get("id")
    if not isinstance(template_id, str) or not re.match(SLUG, template_id):
        errors.append(
            _problem(
                file, lines, ("id",), "a template needs an id: lowercase letters, digits, - and _"
            )
        )
    tags = document.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        errors.append(_problem(file, lines, ("tags",), "tags must be a list of words"))
        tags = []
    specs, failed, input_errors = _inputs(document.get("inputs"), file, lines)
    errors += input_errors
    body = {k: v for k, v in document.items() if k not in TEMPLATE_KEYS}
    uses, problems = scan(body, specs, failed)
    errors += [_problem(file, lines, p.loc, p.message) for p in problems]
    used = {u.name for u in uses}
    for name in specs:
        if name not in used:
            errors.append(
                _problem(
                    file, lines, ("inputs", name), f"input {name!r} is declared but never used"
                )
            )
    if errors:
        return None, errors
    template = Template(
        id=str(template_id),
        name=str(body.get("name", template_id)),
        description=str(body.get("description", "")),
        tags=list(tags),
        inputs=specs,
        body=body,
        file=file,
        lines=lines,
    )
    if registry is not None:
        from engine.templates.instantiate import check_with_samples

        errors += check_with_samples(template, registry)
    return (template if not errors else None), errors


def load_template_text(
    text: str, file: str, registry: Registry | None
) -> tuple[list[Template], list[ErrorDetail]]:
    """Every template in a YAML stream (``---`` separates several)."""
    docs, errors = parse_yaml(text, file)
    templates: list[Template] = []
    for document, lines in docs:
        template, problems = parse_template(document, lines, file, registry)
        errors += problems
        if template is not None:
            templates.append(template)
    return templates, errors


def load_template_file(
    path: Path, registry: Registry | None, display: str | None = None
) -> tuple[list[Template], list[ErrorDetail]]:
    name = display or str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return [], [ErrorDetail("", "file is larger than 1 MB", file=name)]
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [ErrorDetail("", f"cannot read: {exc}", file=name)]
    return load_template_text(text, name, registry)


def template_files(paths: Iterable[Path]) -> list[Path]:
    """The ``*.yaml``/``*.yml`` files inside folders named ``templates`` below the given paths
    (a file given directly counts as a template)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            files += sorted(
                p
                for p in found
                if "templates" in p.relative_to(path).parts[:-1] or path.name == "templates"
            )
        elif path.is_file():
            files.append(path)
    return files


@dataclass
class TemplateLoadResult:
    templates: list[Template] = field(default_factory=list)
    errors: list[ErrorDetail] = field(default_factory=list)


def validate_templates(paths: Iterable[Path], registry: Registry) -> TemplateLoadResult:
    """Load and check every template below ``paths`` (the files ``load_paths`` skips), and every
    ``pack.yaml`` manifest found there. A template id used twice in one pack is an error."""
    paths = list(paths)
    result = TemplateLoadResult()
    seen: dict[tuple[Path, str], str] = {}
    for file in template_files(paths):
        templates, errors = load_template_file(file, registry)
        result.errors += errors
        for template in templates:
            key = (file.parent, template.id)
            if key in seen:
                detail = ErrorDetail(
                    "id", f"template id {template.id!r} is also used in {seen[key]}", file=str(file)
                )
                result.errors.append(detail)
                continue
            seen[key] = str(file)
            result.templates.append(template)
    for path in paths:
        manifests = (
            [path]
            if path.name == "pack.yaml"
            else sorted(path.rglob("pack.yaml"))
            if path.is_dir()
            else []
        )
        for manifest in manifests:
            result.errors += check_manifest_file(manifest)
    return result
