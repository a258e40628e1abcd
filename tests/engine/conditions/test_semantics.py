"""The semantic decisions documented in engine/conditions/semantics.py and docs/conditions.md.

Each decision is checked through both evaluation routes (compiled and interpreted).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from engine.conditions import EvaluationError, apply, evaluate, validate_rule
from engine.conditions.semantics import (
    format_number,
    loose_equals,
    strict_equals,
    to_js_string,
    to_number,
    truthy,
)
from tests.engine.conditions.suites import json_equal

Run = Callable[[Any, Any], Any]


def _interpret(rule: Any, data: Any = None) -> Any:
    validate_rule(rule)
    return evaluate(rule, data)


@pytest.fixture(params=["compiled", "interpreted"])
def run(request: pytest.FixtureRequest) -> Run:
    return apply if request.param == "compiled" else _interpret


# --------------------------------------------------------------------------- truthiness


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({}, True),
        ({"a": 0}, True),
        ([], False),
        ([0], True),
        ("0", True),
        ("", False),
        (0, False),
        (0.0, False),
        (-1, True),
        (None, False),
        (math.nan, False),
    ],
)
def test_truthiness_is_javascripts_with_empty_array_falsy(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


def test_empty_object_is_truthy_in_rules(run: Run) -> None:
    assert run({"if": [{"var": "o"}, "yes", "no"]}, {"o": {}}) == "yes"
    assert run({"!!": [{"var": "o"}]}, {"o": {}}) is True
    assert run({"and": [{"var": "o"}, 1]}, {"o": {}}) == 1


# --------------------------------------------------------------------------- equality


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (None, 0, False),
        (0, None, False),
        (None, None, True),
        (None, False, False),
        (None, "", False),
        ([], "", True),
        ([], 0, True),
        ([0], False, True),
        ([1, 2], "1,2", True),
        ({}, "[object Object]", True),
        ("1", 1, True),
        (1, True, True),
        ("1", True, True),
        (2, True, False),
        ("01", 1, True),
        (" 1 ", 1, True),
        ("abc", 1, False),
        (1, 1.0, True),
        ("a", "a", True),
    ],
)
def test_loose_equality_is_javascripts(a: Any, b: Any, expected: bool) -> None:
    assert loose_equals(a, b) is expected
    assert loose_equals(b, a) is expected


def test_null_never_equals_zero_and_missing_equals_null(run: Run) -> None:
    assert run({"==": [{"var": "gone"}, 0]}, {}) is False
    assert run({"==": [{"var": "gone"}, None]}, {}) is True
    assert run({"!=": [{"var": "count"}, None]}, {"count": 0}) is True


def test_loose_equality_with_a_non_numeric_string_is_false_not_an_error(run: Run) -> None:
    assert run({"==": [{"var": "status"}, 1]}, {"status": "pending"}) is False
    assert run({"!=": [{"var": "status"}, 1]}, {"status": "pending"}) is True


def test_arrays_and_objects_are_equal_only_to_themselves(run: Run) -> None:
    assert run({"==": [[1], [1]]}, None) is False
    assert run({"===": [{"var": "a"}, {"var": "a"}]}, {"a": [1]}) is True
    assert run({"==": [{"var": "a"}, {"var": "b"}]}, {"a": [1], "b": [1]}) is False


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(True, 1, False), (False, 0, False), (1, 1.0, True), ("1", 1, False), (None, None, True)],
)
def test_strict_equality_keeps_json_types_apart(a: Any, b: Any, expected: bool) -> None:
    assert strict_equals(a, b) is expected


def test_booleans_are_not_numbers_for_strict_equality(run: Run) -> None:
    assert run({"===": [{"var": "flag"}, 1]}, {"flag": True}) is False
    assert run({"in": [1, {"var": "flags"}]}, {"flags": [True]}) is False
    assert run({"in": ["1", {"var": "ids"}]}, {"ids": [1]}) is False


# --------------------------------------------------------------------------- var


def test_var_default_applies_to_a_missing_key_or_a_null_intermediate(run: Run) -> None:
    assert run({"var": ["a.b", "d"]}, {}) == "d"
    assert run({"var": ["a.b", "d"]}, {"a": None}) == "d"
    assert run({"var": ["a.b", "d"]}, {"a": "text"}) == "d"


def test_var_returns_a_stored_null_rather_than_the_default(run: Run) -> None:
    assert run({"var": ["a.b", "d"]}, {"a": {"b": None}}) is None
    assert run({"var": ["a", "d"]}, {"a": None}) is None


def test_var_indexes_lists_by_canonical_numbers_only(run: Run) -> None:
    data = {"tags": ["a", "b"]}
    assert run({"var": "tags.1"}, data) == "b"
    assert run({"var": ["tags.01", "none"]}, data) == "none"
    assert run({"var": ["tags.5", "none"]}, data) == "none"
    assert run({"var": ["tags.length", "none"]}, data) == "none"


def test_var_does_not_index_into_strings(run: Run) -> None:
    assert run({"var": ["name.0", "none"]}, {"name": "abc"}) == "none"


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 0), (" 12 ", 12), ("1.5", 1.5), ("1e2", 100), ("-0.5", -0.5), ("0x1A", 26), (".5", 0.5)],
)
def test_numeric_strings_follow_javascript_grammar(text: str, expected: float) -> None:
    assert to_number(text) == expected


@pytest.mark.parametrize("text", ["abc", "1_000", "Infinity", "NaN", "1e400", "12px", "0x"])
def test_non_numbers_raise_nan(text: str) -> None:
    with pytest.raises(EvaluationError) as caught:
        to_number(text)
    assert caught.value.error_type == "NaN"


@pytest.mark.parametrize(
    "rule",
    [
        {"+": ["a", 1]},
        {"*": [[2], 1]},
        {"-": [{"var": "obj"}, 1]},
        {"/": [1, 0]},
        {"%": [5, 0]},
        {"*": [1e308, 10]},
        {"max": ["x"]},
    ],
)
def test_arithmetic_without_a_finite_answer_raises_nan(run: Run, rule: Any) -> None:
    with pytest.raises(EvaluationError) as caught:
        run(rule, {"obj": {}})
    assert caught.value.error_type == "NaN"


def test_null_empty_string_and_booleans_count_as_numbers(run: Run) -> None:
    assert run({"+": [None, "", True, "2"]}, None) == 3


def test_integral_results_are_ints_and_modulo_keeps_the_dividends_sign(run: Run) -> None:
    quotient = run({"/": [4, 2]}, None)
    assert quotient == 2
    assert type(quotient) is int
    assert run({"/": [1, 4]}, None) == 0.25
    assert run({"%": [-1, 2]}, None) == -1
    assert run({"%": [7.5, 2]}, None) == 1.5


def test_minus_and_divide_chain_over_all_arguments(run: Run) -> None:
    assert run({"-": [10, 2, 3]}, None) == 5
    assert run({"/": [8, 2, 2]}, None) == 2
    assert run({"/": 4}, None) == 0.25


def test_max_and_min_need_an_argument(run: Run) -> None:
    with pytest.raises(EvaluationError) as caught:
        run({"max": {"var": "prices"}}, {"prices": []})
    assert caught.value.error_type == "Invalid Arguments"
    assert run({"min": ["3", 2.5]}, None) == 2.5


# --------------------------------------------------------------------------- ordering


def test_two_strings_compare_alphabetically_otherwise_numerically(run: Run) -> None:
    assert run({"<": ["10", "9"]}, None) is True
    assert run({"<": ["10", 9]}, None) is False
    assert run({"<": [None, 1]}, None) is True
    assert run({"<=": [False, 0]}, None) is True


@pytest.mark.parametrize("rule", [{"<": [1, "A"]}, {"<": [[], [1]]}, {">": [{}, 1]}])
def test_ordering_without_a_numeric_answer_raises_nan(run: Run, rule: Any) -> None:
    with pytest.raises(EvaluationError) as caught:
        run(rule, None)
    assert caught.value.error_type == "NaN"


# --------------------------------------------------------------------------- strings


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (1.5, "1.5"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (1e21, "1e+21"),
        (1e16, "10000000000000000"),
        (1.5e-7, "1.5e-7"),
        (1e-6, "0.000001"),
        (123456.789, "123456.789"),
        (-2.5e30, "-2.5e+30"),
    ],
)
def test_numbers_format_like_javascript(value: float, expected: str) -> None:
    assert format_number(value) == expected


def test_cat_uses_javascript_string_conversion(run: Run) -> None:
    assert run({"cat": [1.0, " ", True, " ", None, [1, [2, None]]]}, None) == "1 true 1,2,"
    assert to_js_string({"a": 1}) == "[object Object]"


# --------------------------------------------------------------------------- iterators


def test_map_and_filter_over_a_non_array_give_an_empty_array(run: Run) -> None:
    assert run({"map": [{"var": "x"}, {"var": ""}]}, {"x": "abc"}) == []
    assert run({"filter": [{"var": "x"}, True]}, {}) == []
    assert run({"reduce": [{"var": "x"}, 1, 7]}, {}) == 7


def test_quantifiers_need_an_array(run: Run) -> None:
    for op in ("all", "some", "none"):
        with pytest.raises(EvaluationError) as caught:
            run({op: [{"var": "x"}, True]}, {})
        assert caught.value.error_type == "Invalid Arguments"
    assert run({"all": [[], True]}, None) is False
    assert run({"none": [[], True]}, None) is True


def test_iterators_see_only_the_element_and_val_can_climb(run: Run) -> None:
    data = {"items": [1, 2], "offset": 10}
    assert run({"map": [{"var": "items"}, {"var": "offset"}]}, data) == [None, None]
    climb = {"map": [{"var": "items"}, {"+": [{"val": []}, {"val": [[2], "offset"]}]}]}
    assert run(climb, data) == [11, 12]
    assert run({"map": [{"var": "items"}, {"val": [[1], "index"]}]}, data) == [0, 1]


# --------------------------------------------------------------------------- misc


def test_returned_constants_are_fresh_copies(run: Run) -> None:
    first = run({"preserve": {"a": [1]}}, None)
    first["a"].append(2)
    assert run({"preserve": {"a": [1]}}, None) == {"a": [1]}
    literal = run([{}, [1]], None)
    literal[0]["x"] = 1
    assert run([{}, [1]], None) == [{}, [1]]


def test_log_returns_its_value_and_prints_nothing(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    assert json_equal(run({"log": [{"var": "a"}]}, {"a": [1]}), [1])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_try_and_throw_carry_the_error_type(run: Run) -> None:
    with pytest.raises(EvaluationError) as caught:
        run({"throw": {"preserve": {"type": "out of stock", "sku": "A1"}}}, None)
    assert caught.value.error_type == "out of stock"
    assert caught.value.payload == {"type": "out of stock", "sku": "A1"}
    assert run({"try": [{"/": [1, 0]}, {"cat": ["failed: ", {"var": "type"}]}]}, None) == (
        "failed: NaN"
    )
