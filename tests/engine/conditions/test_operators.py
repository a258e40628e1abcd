"""The operator catalog: complete, well-formed, and every example evaluates as stated."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.conditions import ALLOWED_OPERATORS, OPERATORS, apply, evaluate, validate_rule
from tests.engine.conditions.suites import compat_cases, json_equal, official_cases

CLASSIC = {
    "var", "missing", "missing_some", "if", "?:", "==", "===", "!=", "!==", "!", "!!", "or",
    "and", ">", ">=", "<", "<=", "max", "min", "+", "-", "*", "/", "%", "map", "reduce",
    "filter", "all", "none", "some", "merge", "in", "cat", "substr", "log",
}  # fmt: skip
EXTENSIONS = {"val", "exists", "??", "throw", "try", "preserve"}


@pytest.mark.parametrize("name", list(OPERATORS))
def test_example_evaluates_to_its_stated_result(name: str) -> None:
    example = OPERATORS[name].example
    validate_rule(example.rule)
    assert json_equal(apply(example.rule, example.data), example.result)
    assert json_equal(evaluate(example.rule, example.data), example.result)


@pytest.mark.parametrize("name", list(OPERATORS))
def test_example_uses_its_operator(name: str) -> None:
    assert f'"{name}"' in json.dumps(OPERATORS[name].example.rule)


def test_catalog_covers_the_classic_operators_and_the_cheap_extensions() -> None:
    assert set(OPERATORS) == CLASSIC | EXTENSIONS
    assert frozenset(OPERATORS) == ALLOWED_OPERATORS
    assert {n for n, spec in OPERATORS.items() if spec.extension} == EXTENSIONS


def _operators_in(rule: Any) -> set[str]:
    if isinstance(rule, list):
        return set().union(*(_operators_in(item) for item in rule))
    if isinstance(rule, dict) and len(rule) == 1:
        ((name, args),) = rule.items()
        return {name} if name == "preserve" else {name} | _operators_in(args)
    return set()


def test_every_operator_the_suites_use_is_catalogued() -> None:
    used: set[str] = set()
    for rule, _, _ in official_cases():
        used |= _operators_in(rule)
    for case in compat_cases():
        used |= _operators_in(case.rule)
    assert used <= ALLOWED_OPERATORS


@pytest.mark.parametrize("name", list(OPERATORS))
def test_entries_are_well_formed(name: str) -> None:
    spec = OPERATORS[name]
    assert spec.name == name
    assert spec.description
    assert "\n" not in spec.description
    assert spec.description.endswith(".")
    assert spec.arguments
    assert spec.category
    assert spec.max_args is None or spec.min_args <= spec.max_args
    assert not (spec.array_only and spec.chains)


def test_catalog_is_json_serialisable_and_read_only() -> None:
    payload = json.loads(json.dumps([spec.to_dict() for spec in OPERATORS.values()]))
    assert payload[0]["name"] == "var"
    assert set(payload[0]) >= {"name", "description", "arguments", "min_args", "example"}
    with pytest.raises(TypeError):
        OPERATORS["nope"] = OPERATORS["var"]  # type: ignore[index]
