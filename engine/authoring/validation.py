"""Two-phase recipe validation: shape first, then everything the shape refers to.

Phase 1 checks the document against :class:`~engine.model.recipe.Recipe`. Phase 2 resolves
``trigger.type`` and every step's ``use`` in the registry, validates each ``with:`` against that
trigger's or action's parameter model (fields holding templates are checked when rendered),
checks every JsonLogic rule against the operator allowlist and limits, and compiles every
template. Nothing is saved unless both phases pass.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from engine import conditions
from engine.authoring.rendering import check_template, is_template
from engine.errors import ConditionError, ErrorDetail, RegistryError, RenderError
from engine.model.recipe import NOT_IN_BRANCH, SLUG, Recipe, Step
from engine.registry import Registry

Loc = tuple[str | int, ...]


def format_loc(loc: Loc) -> str:
    """``("actions", 1, "with", "limit")`` → ``actions[1].with.limit``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(error: Any) -> str:
    msg = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown field (check the spelling; the catalog lists every parameter)"
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == SLUG:
        return (
            f"{error['input']!r} is not a valid id: use lowercase letters, digits, - and _, "
            "starting with a letter or digit, at most 80 characters"
        )
    return msg[0].lower() + msg[1:] if msg else msg


def _pydantic_details(exc: ValidationError, prefix: Loc, data: Any = None) -> list[ErrorDetail]:
    details = []
    for error in exc.errors():
        loc = prefix + tuple(p for p in error["loc"] if not isinstance(p, str) or p != "__root__")
        if data is not None and _through_template(data, tuple(error["loc"])):
            continue
        details.append(ErrorDetail(path=format_loc(loc), message=_message(error), loc=loc))
    return details


def _through_template(data: Any, loc: Loc) -> bool:
    """True if the value at ``loc`` (or on the way to it) is a template, checked at run time."""
    node = data
    for part in loc:
        if is_template(node):
            return True
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_dict or in_list:
            node = node[part]
        else:
            return False
    return is_template(node)


def _check_params(model: type[BaseModel], values: dict[str, Any], prefix: Loc) -> list[ErrorDetail]:
    try:
        model.model_validate(values)
    except ValidationError as exc:
        return _pydantic_details(exc, prefix, values)
    return []


def _check_templates(value: Any, loc: Loc) -> list[ErrorDetail]:
    if isinstance(value, str):
        if not is_template(value):
            return []
        try:
            check_template(value, format_loc(loc))
        except RenderError as exc:
            return [ErrorDetail(path=format_loc(loc), message=exc.message, loc=loc)]
        return []
    if isinstance(value, dict):
        return [d for k, v in value.items() for d in _check_templates(v, (*loc, k))]
    if isinstance(value, list):
        return [d for i, v in enumerate(value) for d in _check_templates(v, (*loc, i))]
    return []


def _check_rule(rule: Any, loc: Loc) -> list[ErrorDetail]:
    try:
        conditions.validate_rule(rule)
    except ConditionError as exc:
        inner = exc.path
        path = format_loc(loc) + ("." + inner if inner and not inner.startswith("[") else inner)
        return [ErrorDetail(path=path, message=exc.message, loc=loc)]
    return []


def _shape(document: Any) -> tuple[Recipe | None, list[ErrorDetail]]:
    """Phase 1. When the only problems are malformed ids, the rest is still checked (with
    stand-in ids), so one bad id does not hide every other error."""
    try:
        return Recipe.model_validate(document), []
    except ValidationError as exc:
        details = _pydantic_details(exc, ())
        bad_ids = [e["loc"] for e in exc.errors() if e["loc"][-1:] == ("id",)]
        if len(bad_ids) < len(exc.errors()) or not isinstance(document, dict):
            return None, details
    patched = dict(document)
    patched["actions"] = [
        dict(a) if isinstance(a, dict) else a for a in document.get("actions", [])
    ]
    for n, loc in enumerate(bad_ids):
        parent: Any = patched
        for part in loc[:-1]:
            parent = parent[part]
        parent["id"] = f"id-{n}"
    try:
        return Recipe.model_validate(patched), details
    except ValidationError:
        return None, details


def validate_document(document: Any, registry: Registry) -> tuple[Recipe | None, list[ErrorDetail]]:
    """Validate a recipe document; returns the recipe (or ``None``) and every problem found."""
    recipe, details = _shape(document)
    if recipe is None:
        return None, details
    try:
        trigger = registry.trigger(recipe.trigger.type)
    except RegistryError as exc:
        loc: Loc = ("trigger", "type")
        details.append(ErrorDetail(path=format_loc(loc), message=str(exc), loc=loc))
    else:
        details += _check_params(trigger.params, recipe.trigger.with_, ("trigger", "with"))
    for index, rule in enumerate(recipe.conditions):
        details += _check_rule(rule, ("conditions", index))
    if recipe.concurrency_key:
        details += _check_templates(recipe.concurrency_key, ("concurrency_key",))
    for index, step in enumerate(recipe.actions):
        details += _check_step(step, ("actions", index), registry, inside=None)
    return (recipe if not details else None), details


def _check_step(
    step: Step, prefix: Loc, registry: Registry, inside: str | None
) -> list[ErrorDetail]:
    """A step's action, parameters, templates and ``if``; a ``for_each`` step's list and its
    steps, a ``parallel`` step's branches (one level: neither inside a ``for_each`` or a
    branch, whose steps do not wait either). ``inside``: ``for_each`` or ``parallel``."""
    details: list[ErrorDetail] = []
    if step.if_ is not None:
        details += _check_rule(step.if_, (*prefix, "if"))
    if step.has_sub_steps() and inside is not None:
        loc: Loc = (*prefix, "for_each" if step.is_loop() else "parallel")
        kind = "a for_each" if step.is_loop() else "a parallel"
        where = "a parallel branch" if inside == "parallel" else "a for_each"
        if step.is_loop() and inside == "for_each":
            where = "another for_each"
        message = f"{kind} step cannot be inside {where} (one level only)"
        return [*details, ErrorDetail(path=format_loc(loc), message=message, loc=loc)]
    if step.is_parallel():
        return details + _check_branches(step, prefix, registry)
    if step.is_loop():
        details += _check_templates(step.for_each, (*prefix, "for_each"))
        if not isinstance(step.for_each, list) and not is_template(step.for_each):
            loc = (*prefix, "for_each")
            message = "expected a list, or a template that renders to one ({{ order.lines }})"
            details.append(ErrorDetail(path=format_loc(loc), message=message, loc=loc))
        for n, sub in enumerate(step.steps or []):
            details += _check_step(sub, (*prefix, "steps", n), registry, inside="for_each")
        return details
    try:
        action = registry.action(step.use)
    except RegistryError as exc:
        loc = (*prefix, "use")
        details.append(ErrorDetail(path=format_loc(loc), message=str(exc), loc=loc))
    else:
        details += _check_params(action.params, step.with_, (*prefix, "with"))
    details += _check_templates(step.with_, (*prefix, "with"))
    return details


def _check_branches(step: Step, prefix: Loc, registry: Registry) -> list[ErrorDetail]:
    """Every step of every branch of a ``parallel`` step; none of them may wait."""
    details: list[ErrorDetail] = []
    for name, subs in (step.parallel or {}).items():
        for n, sub in enumerate(subs):
            at: Loc = (*prefix, "parallel", name, n)
            if sub.use in NOT_IN_BRANCH:
                loc: Loc = (*at, "use")
                message = (
                    f"{sub.use} waits, and the steps of a parallel branch cannot wait: put it "
                    "before or after the parallel step"
                )
                details.append(ErrorDetail(path=format_loc(loc), message=message, loc=loc))
                continue
            details += _check_step(sub, at, registry, inside="parallel")
    return details
