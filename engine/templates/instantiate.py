"""Turn a template and a merchant's inputs into a recipe.

Three checks, each reporting every problem it finds: the inputs against their types and constraints
(``inputs.limit: must be ≥ 1``); the filled-in recipe through
:func:`~engine.authoring.validation.validate_document`, with a problem in a value that came from an
input reported against that input (``inputs.limit: input should be less than or equal to 1000 (at
actions[0].with.limit)``); and the recipe id. Saving, and the record of which template and inputs
made the recipe, belong to :mod:`engine.packs.install`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engine.authoring.validation import Loc, format_loc, validate_document
from engine.errors import ErrorDetail, RecipeError
from engine.model.recipe import SLUG_MAX, Recipe
from engine.registry import Registry
from engine.templates.inputs import resolve
from engine.templates.placeholders import Filler, origin
from engine.templates.template import Template

_ALIASES = {"with_": "with", "if_": "if"}


@dataclass(frozen=True)
class Instance:
    """What instantiating made: the recipe, its document, and every input's value."""

    template: Template
    recipe: Recipe
    values: dict[str, Any]

    def document(self) -> dict[str, Any]:
        return self.recipe.document()


def recipe_id_for(template_id: str, store: str | None = None) -> str:
    """The id a recipe gets by default: the template's, with the store hash for one store."""
    raw = f"{template_id}-{store}" if store else template_id
    slug = re.sub(r"[^a-z0-9_-]+", "-", raw.lower()).strip("-_") or "recipe"
    return slug[:SLUG_MAX]


def _input_detail(name: str, message: str) -> ErrorDetail:
    return ErrorDetail(f"inputs.{name}", message, loc=("inputs", name))


def _plain(loc: Loc) -> Loc:
    return tuple(_ALIASES.get(p, p) if isinstance(p, str) else p for p in loc)


def fill(
    template: Template,
    values: dict[str, Any],
    *,
    recipe_id: str | None = None,
    name: str | None = None,
    store: str | list[str] | None = None,
) -> tuple[dict[str, Any], dict[Loc, set[str]], list[ErrorDetail]]:
    """The recipe document with checked ``values`` filled in, where each value went, and any
    value that would change the run-time template it stands in."""
    filler = Filler(template.inputs, values)
    document = filler.fill(template.body)
    if recipe_id is not None:
        document["id"] = recipe_id
    if name is not None:
        document["name"] = name
    if store is not None:
        document["store"] = store
    problems = [_input_detail(n, m) for n, m in filler.problems]
    return document, filler.origins, problems


def _blame(details: list[ErrorDetail], origins: dict[Loc, set[str]]) -> list[ErrorDetail]:
    out = []
    for detail in details:
        name = origin(origins, _plain(detail.loc))
        out.append(_input_detail(name, f"{detail.message} (at {detail.path})") if name else detail)
    return out


def instantiate(
    template: Template,
    given: dict[str, Any],
    registry: Registry,
    *,
    recipe_id: str | None = None,
    name: str | None = None,
    store: str | list[str] | None = None,
) -> Instance:
    """Check the inputs, fill them in and validate the recipe; raise :class:`RecipeError` with
    every problem, each pointing at the input that caused it where one did."""
    values, problems = resolve(template.inputs, given)
    if problems:
        raise RecipeError([_input_detail(n, m) for n, m in problems.items()])
    if recipe_id is None:
        recipe_id = recipe_id_for(
            template.id, store if isinstance(store, str) and store != "*" else None
        )
    document, origins, fill_problems = fill(
        template, values, recipe_id=recipe_id, name=name, store=store
    )
    if fill_problems:
        raise RecipeError(fill_problems)
    recipe, details = validate_document(document, registry)
    if recipe is None:
        raise RecipeError(_blame(details, origins))
    return Instance(template, recipe, values)


def check_with_samples(template: Template, registry: Registry) -> list[ErrorDetail]:
    """Problems of the recipe a template makes from sample inputs, placed in the template file.

    A problem in a value that came from an input is reported at that input's declaration."""
    document, origins, problems = fill(template, template.samples())
    _, details = validate_document(document, registry)
    out: list[ErrorDetail] = []
    for detail in [*problems, *details]:
        name = (
            origin(origins, _plain(detail.loc))
            if detail.loc[:1] != ("inputs",)
            else str(detail.loc[1])
        )
        loc: Loc = ("inputs", name) if name else _plain(detail.loc)
        message = (
            f"{detail.message} (with the sample value, at {detail.path})"
            if name
            else detail.message
        )
        out.append(
            ErrorDetail(
                format_loc(loc),
                message,
                file=template.file or None,
                line=template.line(loc),
                loc=loc,
            )
        )
    return out
