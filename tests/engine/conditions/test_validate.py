"""validate_rule: what it rejects, and the paths it reports."""

from __future__ import annotations

import math
from typing import Any

import pytest

from engine.conditions import apply, compile_rule, evaluate, validate_rule
from engine.errors import ConditionError
from tests.engine.conditions.suites import json_equal


def _error(rule: Any, **limits: int) -> ConditionError:
    with pytest.raises(ConditionError) as caught:
        validate_rule(rule, **limits)
    return caught.value


@pytest.mark.parametrize(
    "rule",
    [
        {"and": [{"<=": [{"var": "a"}, 0]}, {"in": ["x", {"var": "tags"}]}]},
        {"if": []},
        {},
        [1, {"var": "x"}, {}],
        {"preserve": {"a": 1, "b": {"c": [1, 2]}}},
        {"max": {"var": "prices"}},
        {"!": []},
        None,
        "text",
    ],
)
def test_valid_rules_pass_and_compile(rule: Any) -> None:
    validate_rule(rule)
    data = {"a": 1, "x": 2, "prices": [3, 4]}
    assert json_equal(compile_rule(rule)(data), evaluate(rule, data))


def test_unknown_operator_is_reported_with_its_path_and_a_suggestion() -> None:
    error = _error({"and": [True, {"or": [{"lenght": "x"}]}]})
    assert error.path == "and[1].or[0].lenght"
    assert "unknown operator 'lenght'" in error.message


def test_unknown_operator_close_to_a_known_one_gets_a_hint() -> None:
    error = _error({"and": [{"sume": [[1], True]}]})
    assert error.path == "and[0].sume"
    assert "did you mean 'some'?" in error.message


def test_object_with_several_keys_in_rule_position_is_malformed() -> None:
    error = _error({"and": [True, {"in": [{"a": 1, "b": 2}, "ab"]}]})
    assert error.path == "and[1].in[0]"
    assert "exactly one key, found 2" in error.message


@pytest.mark.parametrize(
    ("rule", "path", "fragment"),
    [
        ({"in": ["a"]}, "in", "exactly 2 arguments, got 1"),
        ({"missing_some": [1]}, "missing_some", "exactly 2 arguments"),
        ({"?:": [True, 1]}, "?:", "exactly 3 arguments, got 2"),
        ({"==": [1]}, "==", "at least 2 arguments, got 1"),
        ({"%": 1}, "%", "at least 2 arguments, got 1"),
        ({"-": []}, "-", "at least 1 argument, got 0"),
        ({"var": ["a", 1, 2]}, "var", "0 to 2 arguments, got 3"),
        ({"!": [1, 2]}, "!", "0 to 1 arguments, got 2"),
        ({"map": [[1]]}, "map", "exactly 2 arguments, got 1"),
        ({"reduce": [[1], 1, 2, 3]}, "reduce", "2 to 3 arguments, got 4"),
    ],
)
def test_wrong_arity_is_rejected(rule: Any, path: str, fragment: str) -> None:
    error = _error({"or": [False, rule]})
    assert error.path == f"or[1].{path}"
    assert fragment in error.message


@pytest.mark.parametrize("op", ["and", "or", "if", "==", "<", "map", "all"])
def test_control_operators_need_a_literal_list(op: str) -> None:
    for args in (5, {"preserve": [1, 2]}):
        error = _error({op: args})
        assert error.path == op
        assert "takes a list of arguments" in error.message


def test_iterators_reject_a_literal_that_cannot_be_an_array() -> None:
    error = _error({"!": {"all": [None, True]}})
    assert error.path == "!.all[0]"
    assert "needs an array" in error.message
    assert _error({"map": [[1], None]}).path == "map[1]"


def test_nesting_deeper_than_the_limit_is_rejected() -> None:
    rule: Any = {"var": "x"}
    for _ in range(5):
        rule = {"!": [rule]}
    validate_rule(rule, max_depth=6)
    error = _error(rule, max_depth=5)
    assert error.path == "![0].![0].![0].![0].![0].var"
    assert "deeper than 5 levels" in error.message


def test_literal_arrays_count_toward_depth() -> None:
    error = _error([[[[1]]]], max_depth=3)
    assert error.path == "[0][0][0]"


def test_default_depth_limit_is_64() -> None:
    rule: Any = True
    for _ in range(64):
        rule = {"!!": [rule]}
    validate_rule(rule)
    assert "deeper than 64" in _error({"!!": [rule]}).message


def test_more_nodes_than_the_limit_is_rejected() -> None:
    rule = {"and": [{"==": [{"var": f"f{i}"}, i]} for i in range(10)]}
    validate_rule(rule, max_nodes=41)
    error = _error(rule, max_nodes=40)
    assert "more than 40 nodes" in error.message
    assert error.path.startswith("and[9]")


def test_default_node_limit_is_5000() -> None:
    assert "more than 5000 nodes" in _error(list(range(5000))).message
    validate_rule(list(range(4999)))


@pytest.mark.parametrize(
    ("rule", "path", "fragment"),
    [
        ({"==": [{1, 2}, 1]}, "==[0]", "set is not a JSON value"),
        ({"+": [math.nan]}, "+[0]", "not a JSON number"),
        ({"preserve": {"a": [math.inf]}}, "preserve.a[0]", "not a JSON number"),
        ({"preserve": {1: "x"}}, "preserve", "keys must be strings"),
        ({"==": [(1, 2), 1]}, "==[0]", "tuple is not a JSON value"),
    ],
)
def test_values_that_are_not_json_are_rejected(rule: Any, path: str, fragment: str) -> None:
    error = _error(rule)
    assert error.path == path
    assert fragment in error.message


def test_compile_and_apply_validate_first() -> None:
    with pytest.raises(ConditionError, match="unknown operator 'nope'"):
        compile_rule({"nope": 1})
    with pytest.raises(ConditionError, match="more than 5000 nodes"):
        apply(list(range(6000)), None)
    with pytest.raises(ConditionError, match="set is not a JSON value"):
        apply({"var": {1}}, None)


def test_compile_rule_passes_raised_limits_to_validation() -> None:
    rule: Any = True
    for _ in range(80):
        rule = {"!": [rule]}
    with pytest.raises(ConditionError):
        compile_rule(rule)
    assert compile_rule(rule, max_depth=100)(None) is True
