"""Compiled guards and loops agree with the interpreter on every pair of awkward values.

Covers the shapes compiled to guarded Python operators: chained three-operand comparisons,
``var`` with a constant default read with ``get``, ``missing``/``missing_some`` tested for
truth without building their list, numeric guards (floats checked for finiteness, ints taken
as they are), ``reduce`` loops whose accumulator is proven to stay a finite number and ``map``
over ``filter`` as one loop.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from engine.conditions import EvaluationError, compile_rule, evaluate
from engine.conditions.codegen import generate
from engine.conditions.compiler import canonical_json

_ABSENT = object()
"""Marks a key left out of the data."""

VALUES: list[Any] = [
    _ABSENT,
    None,
    0,
    2,
    2.0,
    -1.5,
    2**53 + 1,
    float(2**53),
    7.5,
    300,
    10**400,
    True,
    False,
    "",
    "3",
    "abc",
    [],
    [1],
    {},
    math.nan,
    math.inf,
    -math.inf,
]

X, Y, Z = {"var": "x"}, {"var": "y"}, {"var": "z"}
PAIR_RULES: list[Any] = [
    {"<": [0, X, Y]},
    {"<=": [X, Y, 10]},
    {"<": [X, 5, Y]},
    {"<=": [50, X, 250]},
    {"<": [X, Y, Z]},
    {"<": [0, {"+": [X, 1]}, Y]},
    {">": [{"var": ["x", 0]}, Y]},
    {"==": [{"var": ["x.w", "d"]}, "d"]},
    {"<": [{"var": ["x", 1.5]}, 2]},
    {">=": [X, Y]},
    {"<": [X, 4]},
    {"==": [X, 2]},
    {"!==": [X, 300]},
    {">=": [1.5, X]},
    {"<": [X, 2**53 + 1]},
    {"<=": [-3, X, 2.5]},
    {"<": [2**53, X, 2**53 + 2]},
    {">": [{"max": [X, Y]}, 1]},
    {"min": [X, Y, 3]},
    {"+": [{"*": [X, Y]}, {"-": [X, 1]}]},
    {"/": [{"-": [X, Y]}, Y]},
    {">=": [{"/": [{"-": [X, 1]}, Y]}, 0.3]},
    {"/": [{"*": [X, 1.5]}, {"+": [Y, 1]}]},
    {"*": [{"-": [X, 0.5]}, Y]},
    {"!": {"missing": ["x", "y", "z"]}},
    {"!!": {"missing": ["x.a", "y"]}},
    {"if": [{"missing": ["x"]}, "absent", "present"]},
    {"!": {"missing_some": [1, ["x", "y", "z"]]}},
    {"!": {"missing_some": [2, ["x", "y", "z"]]}},
    {"!!": {"missing_some": [5, ["x", "y"]]}},
    {"!": {"missing_some": [0, ["x"]]}},
    {"!": {"missing_some": ["1.5", ["x", "y"]]}},
    {"!": {"missing_some": [-1, ["x", "y"]]}},
    {"and": [{"missing_some": [1, ["x", "y"]]}, {"missing": ["z"]}]},
]
LIST_RULES: list[Any] = [
    {"reduce": [{"var": "l"}, {"+": [{"var": "accumulator"}, {"var": "current"}]}, 0]},
    {
        "reduce": [
            {"var": "l"},
            {"+": [{"var": "accumulator"}, {"*": [{"var": "current.a"}, {"var": "current.b"}]}]},
            0,
        ]
    },
    {"reduce": [{"var": "l"}, {"max": [{"var": "accumulator"}, {"var": "current"}]}, 0]},
    {"reduce": [{"var": "l"}, {"+": [{"var": "accumulator"}, 1]}, 0.5]},
    {"reduce": [{"var": "l"}, {"-": [{"var": "accumulator"}, {"var": "current"}]}, 10]},
    {"reduce": [{"var": "l"}, {"cat": [{"var": "accumulator"}, {"var": "current"}]}, 0]},
    {
        "reduce": [
            {"var": "l"},
            {"if": [{"var": "current"}, {"+": [{"var": "accumulator"}, 1]}, "no"]},
            0,
        ]
    },
    {"reduce": [{"var": "l"}, {"var": "accumulator"}, 3]},
    {"map": [{"filter": [{"var": "l"}, {"<": [{"var": "a"}, {"var": "b"}]}]}, {"var": "a"}]},
    {"map": [{"filter": [{"var": "l"}, {"var": "b"}]}, {"var": ""}]},
    {"map": [{"filter": [{"var": "l"}, {"var": "a"}]}, {"var": ["b"]}]},
    {">": [{"reduce": [{"var": "l"}, {"+": [{"var": "accumulator"}, 2]}, 0]}, 3]},
]


def _data(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not _ABSENT}


def _outcome(rule: Any, data: Any, function: Any) -> tuple[str, Any]:
    try:
        return "value", function(data)
    except EvaluationError as exc:
        return "error", exc.error_type


def _assert_agrees(rule: Any, data: Any) -> None:
    compiled = _outcome(rule, data, compile_rule(rule))
    interpreted = _outcome(rule, data, lambda d: evaluate(rule, d))
    assert compiled[0] == interpreted[0], (data, compiled, interpreted)
    # repr tells 1 from 1.0 and True from 1, and shows a NaN from the data as equal to itself
    assert repr(compiled[1]) == repr(interpreted[1]), (data, compiled, interpreted)


@pytest.mark.parametrize("rule", PAIR_RULES, ids=canonical_json)
def test_guarded_rules_agree_on_every_pair_of_values(rule: Any) -> None:
    for x, y in itertools.product(VALUES, repeat=2):
        _assert_agrees(rule, _data(x=x, y=y, z=y))
        _assert_agrees(rule, _data(x={"w": x, "a": y}, y=y))


@pytest.mark.parametrize("rule", LIST_RULES, ids=canonical_json)
def test_reduce_loops_agree_on_every_pair_of_values(rule: Any) -> None:
    for x, y in itertools.product(VALUES, repeat=2):
        items = [item for item in (x, y) if item is not _ABSENT]
        _assert_agrees(rule, {"l": items})
        _assert_agrees(rule, {"l": [_data(a=x, b=y), _data(a=y, b=x)]})
    others: list[Any] = [None, "ab", {}, [], [1, 2.5, 0.5], [2**60 + 1, 0.5, 0.5]]
    for other in others:
        _assert_agrees(rule, {"l": other})


def test_truth_of_missing_builds_no_list() -> None:
    source, _, _ = generate({"!": {"missing_some": [1, ["a", "b.c"]]}})
    assert "_absent(" not in source
    assert "_missing" not in source


def test_map_over_filter_with_a_lookup_is_one_loop() -> None:
    rule = {"map": [{"filter": [{"var": "l"}, {"var": "a"}]}, {"var": "b"}]}
    assert generate(rule)[0].count("for ") == 1
    computed = {"map": [{"filter": [{"var": "l"}, {"var": "a"}]}, {"+": [{"var": "b"}, 1]}]}
    assert generate(computed)[0].count("for ") == 2  # arithmetic may raise: order kept


def test_numeric_accumulator_is_not_type_checked_in_the_loop() -> None:
    rule = {"reduce": [{"var": "l"}, {"+": [{"var": "accumulator"}, {"var": "current.n"}]}, 0]}
    source, _, _ = generate(rule)
    assert "_a.__class__" not in source
    fallback = {"reduce": [{"var": "l"}, {"cat": [{"var": "accumulator"}, "x"]}, 0]}
    assert source.count("def ") == 2
    assert generate(fallback)[0].count("def ") == 2  # the abandoned attempt left no function
