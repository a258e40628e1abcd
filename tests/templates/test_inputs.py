"""Input types: checking and normalising values, and the JSON Schema a form is built from."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from pydantic import ValidationError

from engine.templates.inputs import InputError, InputSpec, coerce, resolve
from engine.templates.schema import inputs_schema


def spec(type_: str, **settings: Any) -> InputSpec:
    return InputSpec.model_validate({"name": "value", "type": type_, **settings})


@pytest.mark.parametrize(
    ("settings", "given", "expected"),
    [
        ({"type": "integer"}, "42", 42),
        ({"type": "integer"}, 7.0, 7),
        ({"type": "number"}, "2.5", 2.5),
        ({"type": "boolean"}, "yes", True),
        ({"type": "boolean"}, "off", False),
        ({"type": "string"}, "Back soon", "Back soon"),
        ({"type": "email"}, " ops@example.com ", "ops@example.com"),
        ({"type": "emails"}, "a@example.com, b@example.com", ["a@example.com", "b@example.com"]),
        ({"type": "emails"}, ["a@example.com"], ["a@example.com"]),
        ({"type": "url"}, "https://hooks.example.com/x", "https://hooks.example.com/x"),
        ({"type": "duration"}, "2h30m", "2h30m"),
        ({"type": "time_of_day"}, "08:05", "08:05"),
        ({"type": "choice", "options": ["daily", "weekly"]}, "weekly", "weekly"),
        ({"type": "choice", "options": [{"value": 3, "label": "Three"}]}, "3", 3),
        ({"type": "product"}, "112", 112),
        ({"type": "product", "multiple": True}, "1,2", [1, 2]),
        ({"type": "customer_group"}, 0, 0),
        ({"type": "order_status"}, 11, 11),
    ],
)
def test_values_are_checked_and_normalised(
    settings: dict[str, Any], given: Any, expected: Any
) -> None:
    value = coerce(spec(settings.pop("type"), **settings), given)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("settings", "given", "message"),
    [
        ({"type": "integer", "min": 1}, 0, "must be ≥ 1"),
        ({"type": "integer", "max": 10}, 11, "must be ≤ 10"),
        ({"type": "integer"}, 2.5, "must be a whole number"),
        ({"type": "integer"}, True, "not true/false"),
        ({"type": "number"}, "many", "must be a number"),
        ({"type": "boolean"}, "perhaps", "must be true or false"),
        ({"type": "string", "max_length": 3}, "four", "at most 3 characters"),
        ({"type": "string"}, "{{ secrets.token }}", "input values are data"),
        ({"type": "string"}, "[[ inputs.other ]]", "input values are data"),
        ({"type": "email"}, "not-an-address", "not an e-mail address"),
        ({"type": "emails"}, [], "at least one"),
        ({"type": "emails"}, ["ok@example.com", "nope"], "'nope' is not an e-mail address"),
        ({"type": "url"}, "ftp://x", "not an http(s) URL"),
        ({"type": "duration"}, "soon", "not a duration"),
        ({"type": "time_of_day"}, "25:00", "not a time of day"),
        (
            {"type": "choice", "options": ["daily", "weekly"]},
            "hourly",
            "must be one of 'daily', 'weekly'",
        ),
        ({"type": "product"}, 0, "product id ≥ 1"),
        ({"type": "order_status"}, 15, "between 0 and 14"),
        ({"type": "variant"}, "abc", "must be a variant id"),
    ],
)
def test_bad_values_say_what_is_wrong(settings: dict[str, Any], given: Any, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        coerce(spec(settings.pop("type"), **settings), given)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"type": "string", "min": 1}, "min and max apply to number and integer"),
        ({"type": "integer", "min": 5, "max": 1}, "min is greater than max"),
        ({"type": "choice"}, "a choice input needs options"),
        ({"type": "string", "options": ["a"]}, "only a choice input has them"),
        ({"type": "choice", "options": ["a", "a"]}, "different values"),
        ({"type": "email", "multiple": True}, "multiple applies to choice and picker"),
        ({"type": "colour"}, "Input should be"),
    ],
)
def test_inconsistent_declarations_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(settings.pop("type"), **settings)


def test_a_list_may_be_empty_only_when_its_default_is_empty() -> None:
    optional = spec("category", multiple=True, default=[])
    assert coerce(optional, []) == []
    assert coerce(optional, "") == []
    assert inputs_schema({"skip": optional})["properties"]["skip"]["minItems"] == 0
    with pytest.raises(InputError, match="at least one"):
        coerce(spec("category", multiple=True), [])
    assert inputs_schema({"cc": spec("emails")})["properties"]["cc"]["minItems"] == 1


def test_label_defaults_to_the_name_and_defaults_are_checked() -> None:
    declared = InputSpec.model_validate({"name": "staff_email", "type": "email", "default": "nope"})
    assert declared.label == "Staff email"
    assert declared.required is False
    assert declared.check_defaults() == [("default", "'nope' is not an e-mail address")]


def test_resolve_reports_unknown_missing_and_bad_inputs_by_name() -> None:
    specs = {
        "limit": spec("integer", min=1, default=10),
        "to": spec("email"),
        "on": spec("boolean", default=False),
    }
    values, problems = resolve(specs, {"limit": 0, "colour": "red"})
    assert problems == {
        "colour": "no such input (this template's inputs: limit, to, on)",
        "limit": "must be ≥ 1",
        "to": "required: this input has no default",
    }
    assert values == {"on": False}


def test_schema_is_draft_2020_12_with_picker_annotations() -> None:
    specs = {
        "product": spec("product", label="Product", description="Which product"),
        "groups": spec("customer_group", multiple=True, default=[1]),
        "limit": spec("integer", min=1, max=500, default=50),
        "frequency": spec(
            "choice", options=[{"value": "daily", "label": "Every day"}, "weekly"], default="daily"
        ),
        "eta": spec("duration", default="14d"),
        "at": spec("time_of_day", default="08:00"),
        "staff": spec("emails", example=["ops@example.com"]),
        "hook": spec("url", example="https://hooks.example.com/x"),
    }
    schema = inputs_schema(specs, title="Demo")
    jsonschema.Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert props["product"]["x-sous-picker"] == "product"
    assert props["product"]["type"] == "integer"
    assert props["groups"]["type"] == "array"
    assert props["groups"]["x-sous-picker"] == "customer_group"
    assert props["limit"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 500,
        "title": "Value",
        "default": 50,
        "x-sous-type": "integer",
    }
    assert props["frequency"]["oneOf"][0] == {"const": "daily", "title": "Every day"}
    assert sorted(schema["required"]) == ["hook", "product", "staff"]
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    good = {
        "product": 5,
        "staff": ["ops@example.com"],
        "hook": "https://x.example",
        "eta": "2h",
        "at": "23:59",
    }
    assert list(validator.iter_errors(good)) == []
    bad = {
        "product": 0,
        "staff": [],
        "hook": "https://x.example",
        "eta": "soon",
        "at": "24:00",
        "frequency": "hourly",
    }
    assert {e.path[0] for e in validator.iter_errors(bad)} == {
        "product",
        "staff",
        "eta",
        "at",
        "frequency",
    }
    for name, declared in specs.items():  # every sample value is valid against the schema too
        assert list(validator.iter_errors({**good, name: declared.sample()})) == []
