"""Template inputs as JSON Schema (draft 2020-12), for front ends that render them as a form.

Each input is a property with its ``title`` (the label), ``description``, ``default`` and
``examples``; ``x-sous-type`` names the input type, and store-aware pickers carry
``"x-sous-picker": "product"`` (or ``variant``, ``category``, ``customer_group``,
``order_status``) so a form can offer a chooser filled from the store instead of a number field.
"""

from __future__ import annotations

from typing import Any

from engine.templates.inputs import (
    DURATION_PATTERN,
    MAX_ITEMS,
    MAX_TEXT,
    PICKER_MAX,
    PICKER_MIN,
    PICKERS,
    TIME_PATTERN,
    InputSpec,
    InputType,
    coerce,
)


def input_schema(spec: InputSpec) -> dict[str, Any]:
    """One input as a JSON Schema property."""
    schema = _type_schema(spec)
    schema["title"] = spec.label
    if spec.description:
        schema["description"] = spec.description
    if spec.default is not None:
        schema["default"] = coerce(spec, spec.default)
    if spec.example is not None:
        schema["examples"] = [coerce(spec, spec.example)]
    schema["x-sous-type"] = spec.type.value
    return schema


def _type_schema(spec: InputSpec) -> dict[str, Any]:
    kind = spec.type
    least = 0 if spec.default == [] else 1
    if kind == InputType.EMAILS:
        item = {"type": "string", "format": "email"}
        return {"type": "array", "items": item, "minItems": least, "maxItems": MAX_ITEMS}
    single = _single_schema(spec)
    if spec.multiple:
        schema: dict[str, Any] = {
            "type": "array",
            "items": single,
            "minItems": least,
            "maxItems": MAX_ITEMS,
        }
        if kind in PICKERS:
            schema["x-sous-picker"] = kind.value
        return schema
    return single


def _single_schema(spec: InputSpec) -> dict[str, Any]:
    kind = spec.type
    if kind in (InputType.NUMBER, InputType.INTEGER):
        schema: dict[str, Any] = {"type": kind.value}
        if spec.min is not None:
            schema["minimum"] = int(spec.min) if kind == InputType.INTEGER else spec.min
        if spec.max is not None:
            schema["maximum"] = int(spec.max) if kind == InputType.INTEGER else spec.max
        return schema
    if kind == InputType.STRING:
        schema = {"type": "string", "maxLength": spec.max_length or MAX_TEXT}
        if spec.min_length is not None:
            schema["minLength"] = spec.min_length
        return schema
    if kind == InputType.CHOICE:
        assert spec.options is not None
        return {
            "oneOf": [{"const": o.value, "title": o.label or str(o.value)} for o in spec.options]
        }
    if kind in PICKERS:
        schema = {
            "type": "integer",
            "minimum": PICKER_MIN.get(kind, 1),
            "x-sous-picker": kind.value,
        }
        if kind in PICKER_MAX:
            schema["maximum"] = PICKER_MAX[kind]
        return schema
    simple: dict[InputType, dict[str, Any]] = {
        InputType.BOOLEAN: {"type": "boolean"},
        InputType.EMAIL: {"type": "string", "format": "email"},
        InputType.URL: {"type": "string", "format": "uri", "pattern": "^https?://"},
        InputType.DURATION: {"type": "string", "pattern": DURATION_PATTERN},
        InputType.TIME_OF_DAY: {"type": "string", "pattern": TIME_PATTERN.pattern},
    }
    return dict(simple[kind])


def inputs_schema(
    specs: dict[str, InputSpec], title: str = "", description: str = ""
) -> dict[str, Any]:
    """Every input of a template as one JSON Schema object (draft 2020-12)."""
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {name: input_schema(spec) for name, spec in specs.items()},
        "required": [name for name, spec in specs.items() if spec.required],
        "additionalProperties": False,
    }
    if title:
        schema["title"] = title
    if description:
        schema["description"] = description
    return schema
