"""explain: the result, and the deepest conditions that made a rule falsy."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from engine.conditions import Explanation, Failure, explain
from engine.errors import ConditionError

RULE = {
    "and": [
        {"<=": [{"var": "product.inventory_level"}, 0]},
        {"==": [{"var": "product.inventory_tracking"}, "product"]},
        {"in": ["sale", {"var": "product.tags"}]},
    ]
}


def _product(level: int = 0, tracking: str = "product", tags: Any = ("sale", "summer")) -> Any:
    return {
        "product": {"inventory_level": level, "inventory_tracking": tracking, "tags": list(tags)}
    }


def test_passing_rule_has_no_failures() -> None:
    explanation = explain(RULE, _product())
    assert explanation.result is True
    assert explanation.passed is True
    assert explanation.failures == ()
    assert explanation.error is None
    assert explanation.message == "passed"


def test_and_reports_its_first_falsy_child() -> None:
    explanation = explain(RULE, _product(level=5, tags=["summer"]))
    assert explanation.result is False
    assert explanation.passed is False
    (failure,) = explanation.failures
    assert failure == Failure(
        path="and[0].<=",
        operator="<=",
        actual=(5, 0),
        message="product.inventory_level <= 0 was false (actual: 5)",
    )


def test_later_children_are_reported_with_their_paths() -> None:
    (failure,) = explain(RULE, _product(tracking="none")).failures
    assert failure.path == "and[1].=="
    assert failure.message == 'product.inventory_tracking == "product" was false (actual: "none")'
    (failure,) = explain(RULE, _product(tags=["summer"])).failures
    assert failure.path == "and[2].in"
    assert failure.actual == ("sale", ["summer"])
    assert failure.message == '"sale" in product.tags was false (actual: ["summer"])'


def test_or_reports_every_failed_child() -> None:
    rule = {"or": [{">": [{"var": "total"}, 100]}, {"and": [True, {"var": "vip"}]}]}
    explanation = explain(rule, {"total": 20, "vip": False})
    assert [f.path for f in explanation.failures] == ["or[0].>", "or[1].and[1].var"]
    assert explanation.failures[1].message == "vip was false"
    assert explanation.message == "total > 100 was false (actual: 20); vip was false"


def test_negation_reports_the_truthy_operand() -> None:
    (failure,) = explain({"!": {"var": "blocked"}}, {"blocked": "yes"}).failures
    assert failure.path == "!"
    assert failure.operator == "!"
    assert failure.message == 'not blocked was false (actual: "yes")'


def test_if_reports_the_branch_taken_or_the_conditions_that_failed() -> None:
    rule = {"if": [{"var": "vip"}, {">": [{"var": "total"}, 10]}, {">": [{"var": "total"}, 50]}]}
    (failure,) = explain(rule, {"vip": True, "total": 5}).failures
    assert failure.path == "if[1].>"
    (failure,) = explain(rule, {"vip": False, "total": 20}).failures
    assert failure.path == "if[2].>"
    literal = {"if": [{"var": "a"}, True, {"var": "b"}, True, False]}
    assert [f.path for f in explain(literal, {"a": 0, "b": ""}).failures] == [
        "if[0].var",
        "if[2].var",
    ]


def test_evaluation_errors_are_reported_at_the_failing_node() -> None:
    rule = {"and": [True, {">": [{"var": "price"}, 10]}]}
    explanation = explain(rule, {"price": "n/a"})
    assert explanation.result is None
    assert explanation.passed is False
    assert explanation.error is not None
    assert "not a number" in explanation.error
    (failure,) = explanation.failures
    assert failure.path == "and[1].>"
    assert failure.message.startswith("price > 10 failed: 'n/a' is not a number")


def test_iterator_failures_show_the_array_not_the_body() -> None:
    rule = {"some": [{"var": "tags"}, {"==": [{"var": ""}, "sale"]}]}
    (failure,) = explain(rule, {"tags": ["new"]}).failures
    assert failure.actual == (["new"],)
    assert failure.message.startswith("some(tags, ")


def test_falsy_literal_is_explained() -> None:
    (failure,) = explain({"and": [True, 0]}).failures
    assert failure.path == "and[1]"
    assert failure.message == "0 is falsy"


def test_explanations_are_frozen_and_json_serialisable() -> None:
    explanation = explain(RULE, _product(level=5))
    with pytest.raises(dataclasses.FrozenInstanceError):
        explanation.passed = True  # type: ignore[misc]
    payload = json.loads(json.dumps(explanation.to_dict()))
    assert payload["failures"][0] == {
        "path": "and[0].<=",
        "operator": "<=",
        "actual": [5, 0],
        "message": "product.inventory_level <= 0 was false (actual: 5)",
    }
    assert payload["passed"] is False
    assert payload["result"] is False
    assert isinstance(explanation, Explanation)


def test_invalid_rules_are_rejected() -> None:
    with pytest.raises(ConditionError):
        explain({"nope": []}, {})


ORDER = {
    "lines": [
        {"sku": "TEE", "stock": 4, "tags": []},
        {"sku": "HAT", "stock": 0, "tags": ["fragile"]},
        {"sku": "MUG", "stock": 0, "tags": ["fragile"]},
    ]
}


def test_all_names_the_first_failing_element_and_its_sub_condition() -> None:
    rule = {"all": [{"var": "lines"}, {">": [{"var": "stock"}, 0]}]}
    (failure,) = explain(rule, ORDER).failures
    assert failure.path == "all"
    assert failure.message.endswith(
        'element 1 {"sku": "HAT", "stock": 0, "tags": ["fragile"]}: stock > 0 was false (actual: 0)'
    )


def test_none_names_the_first_matching_element() -> None:
    rule = {"none": [{"var": "lines"}, {"in": ["fragile", {"var": "tags"}]}]}
    (failure,) = explain(rule, ORDER).failures
    assert "element 1 " in failure.message
    assert "element 2" not in failure.message
    assert failure.message.endswith('matched {"in": ["fragile", {"var": "tags"}]}')


def test_some_names_each_failed_element_with_the_failed_sub_condition() -> None:
    rule = {
        "some": [
            {"var": "lines"},
            {"and": [{"==": [{"var": "sku"}, "MUG"]}, {">": [{"var": "stock"}, 0]}]},
        ]
    }
    (failure,) = explain(rule, ORDER).failures
    assert 'element 0 {"sku": "TEE"' in failure.message
    assert 'sku == "MUG" was false' in failure.message
    assert 'element 2 {"sku": "MUG"' in failure.message
    assert failure.message.endswith("stock > 0 was false (actual: 0)")
