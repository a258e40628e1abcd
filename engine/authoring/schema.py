"""The recipe document's JSON Schema, with every trigger's and action's own parameters, so YAML
editors validate and complete recipes as they are typed."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from engine.model.recipe import (
    BRANCH,
    FOR_EACH,
    LOOP_FIELDS,
    MAX_BRANCHES,
    MAX_SUB_STEPS,
    MIN_BRANCHES,
    PARALLEL,
    PARALLEL_FIELDS,
    Recipe,
)
from engine.registry import Registry

TEMPLATE = {
    "type": "string",
    "pattern": r"\{[{%]",
    "description": "A template rendered at run time",
}


def _params_schema(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(schema.pop("$defs", {}))
    for prop in schema.get("properties", {}).values():
        _allow_template(prop)
    return schema


def _allow_template(prop: dict[str, Any]) -> None:
    """Any parameter may hold a template instead of a literal value."""
    original = copy.deepcopy(prop)
    keep: dict[str, Any] = {
        k: original.pop(k) for k in ("title", "description", "default", "examples") if k in original
    }
    prop.clear()
    prop.update(keep)
    prop["anyOf"] = [original, TEMPLATE]


def _loop_variant(variant: dict[str, Any], description: str) -> dict[str, Any]:
    """The ``for_each`` step: its list and its steps, no ``with:``."""
    variant["title"] = FOR_EACH
    variant["description"] = description
    variant["properties"]["use"] = {"const": FOR_EACH}
    for key in ("with", *PARALLEL_FIELDS):
        variant["properties"].pop(key, None)
    variant["properties"]["for_each"] = {
        "anyOf": [{"type": "array"}, TEMPLATE],
        "description": variant["properties"]["for_each"].get("description", ""),
    }
    variant["required"] = ["for_each", "steps"]
    return variant


def _parallel_variant(variant: dict[str, Any], description: str) -> dict[str, Any]:
    """The ``parallel`` step: its branches (each a list of steps), no ``with:``."""
    variant["title"] = PARALLEL
    variant["description"] = description
    variant["properties"]["use"] = {"const": PARALLEL}
    for key in ("with", *LOOP_FIELDS):
        variant["properties"].pop(key, None)
    branches = variant["properties"]["parallel"]
    variant["properties"]["parallel"] = {
        "type": "object",
        "description": branches.get("description", ""),
        "propertyNames": {"pattern": BRANCH},
        "minProperties": MIN_BRANCHES,
        "maxProperties": MAX_BRANCHES,
        "additionalProperties": {
            "type": "array",
            "items": {"$ref": "#/$defs/Step"},
            "minItems": 1,
            "maxItems": MAX_SUB_STEPS,
        },
    }
    variant["required"] = ["parallel"]
    return variant


def recipe_schema(registry: Registry) -> dict[str, Any]:
    schema = Recipe.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    step_base = defs["Step"]
    variants = []
    for name, action in sorted(registry.actions.items()):
        variant = copy.deepcopy(step_base)
        if name == FOR_EACH:
            variants.append(_loop_variant(variant, action.description))
            continue
        if name == PARALLEL:
            variants.append(_parallel_variant(variant, action.description))
            continue
        for key in (*LOOP_FIELDS, *PARALLEL_FIELDS):
            variant["properties"].pop(key, None)
        variant["title"] = name
        variant["description"] = action.description
        variant["properties"]["use"] = {"const": name}
        variant["properties"]["with"] = _params_schema(action.params, defs)
        variants.append(variant)
    if variants:
        defs["Step"] = {"oneOf": variants, "description": step_base.get("description", "")}
    triggers = []
    for type_, trigger in sorted(registry.triggers.items()):
        variant = copy.deepcopy(defs["Trigger"])
        variant["title"] = type_
        variant["description"] = trigger.description
        if type_.endswith(".*"):
            variant["properties"]["type"] = {
                "type": "string",
                "pattern": "^" + type_[:-1].replace(".", r"\.") + r"[a-z0-9_.]+$",
            }
        else:
            variant["properties"]["type"] = {"const": type_}
        variant["properties"]["with"] = _params_schema(trigger.params, defs)
        triggers.append(variant)
    if triggers:
        defs["Trigger"] = {"oneOf": triggers}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://sous.dev/schema/recipe.json"
    return schema
