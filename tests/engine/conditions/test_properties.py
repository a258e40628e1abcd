"""Property: a compiled rule gives exactly what the interpreter gives, for generated rules.

"Exactly" means the same JSON value, or the same error type; and neither route lets anything
but a ConditionError escape.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, assume, given, settings, strategies as st

from engine.conditions import EvaluationError, compile_rule, evaluate, explain, validate_rule
from engine.errors import ConditionError
from tests.engine.conditions.suites import json_equal

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.5, 2.0, 1e300]),
    st.sampled_from(["", "0", "1", "2.5", " 3 ", "a", "sale", "0x10"]),
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
"""Not JSON, but Python data (and ``json.loads``) can hold them: both routes must raise alike."""
VALUES = st.recursive(
    SCALARS | NON_FINITE,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "0"]), inner, max_size=2)
    ),
    max_leaves=6,
)
DATA = st.dictionaries(st.sampled_from(["a", "b", "items", "o", "0"]), VALUES, max_size=5)
PATHS = st.sampled_from(["a", "b", "items", "items.0", "items.1", "o.a", "o.0", "0", "", "x.y"])

LEAVES = st.one_of(
    SCALARS,
    PATHS.map(lambda p: {"var": p}),
    st.tuples(PATHS, SCALARS).map(lambda t: {"var": list(t)}),
    st.sampled_from([{"val": "a"}, {"val": ["o", "a"]}, {"val": []}, {"val": [[2], "a"]}]),
    st.sampled_from([{"val": [[1], "index"]}, {"exists": ["o", "a"]}, {"preserve": {"a": [1]}}]),
    st.sampled_from([{"var": "current"}, {"var": "accumulator"}, {"var": "type"}, {}]),
)


def _op(name: str, children: Any, low: int, high: int) -> Any:
    return st.lists(children, min_size=low, max_size=high).map(lambda args: {name: args})


def _extend(children: Any) -> Any:
    arrays = st.one_of(st.just({"var": "items"}), st.lists(children, max_size=3))
    iterate = st.sampled_from(["map", "filter", "all", "some", "none"])
    return st.one_of(
        _op("and", children, 0, 3),
        _op("or", children, 0, 3),
        _op("if", children, 0, 5),
        _op("??", children, 0, 3),
        children.map(lambda c: {"!": c}),
        _op("!!", children, 0, 1),
        st.sampled_from(["==", "===", "!=", "!==", "<", "<=", ">", ">="]).flatmap(
            lambda name: _op(name, children, 2, 3)
        ),
        st.sampled_from(["+", "*", "cat", "merge", "missing"]).flatmap(
            lambda name: _op(name, children, 0, 3)
        ),
        st.sampled_from(["-", "/", "max", "min"]).flatmap(lambda n: _op(n, children, 1, 3)),
        _op("%", children, 2, 3),
        _op("in", children, 2, 2),
        _op("substr", children, 1, 3),
        _op("try", children, 1, 3),
        children.map(lambda c: {"throw": c}),
        st.tuples(iterate, arrays, children).map(lambda t: {t[0]: [t[1], t[2]]}),
        st.tuples(arrays, children, children).map(lambda t: {"reduce": list(t)}),
        st.sampled_from(["+", "max", "cat", "val"]).flatmap(
            lambda name: children.map(lambda c: {name: {"merge": [c, {"var": "items"}]}})
        ),
    )


RULES = st.recursive(LEAVES, _extend, max_leaves=12)


def _outcome(function: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "value", function(*args)
    except EvaluationError as exc:
        return "error", exc.error_type


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule=RULES, data=DATA)
def test_compiled_rules_agree_with_the_interpreter(rule: Any, data: Any) -> None:
    try:
        validate_rule(rule)
    except ConditionError:
        assume(False)
    compiled = _outcome(compile_rule(rule), data)
    interpreted = _outcome(evaluate, rule, data)
    assert compiled[0] == interpreted[0], (compiled, interpreted)
    if compiled[0] == "error":  # a thrown NaN from the data is the same object, not equal
        assert compiled[1] is interpreted[1] or compiled[1] == interpreted[1]
    else:
        assert _same(compiled[1], interpreted[1])


def _same(a: Any, b: Any) -> bool:
    """:func:`json_equal`, with NaN (passed through from the data) equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return json_equal(a, b)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule=RULES, data=DATA)
def test_explain_agrees_with_evaluation(rule: Any, data: Any) -> None:
    try:
        validate_rule(rule)
    except ConditionError:
        assume(False)
    kind, value = _outcome(evaluate, rule, data)
    explanation = explain(rule, data)
    assert (explanation.error is not None) == (kind == "error")
    if kind == "value":
        assert _same(explanation.result, value)
        assert bool(explanation.failures) == (not explanation.passed)
    assert all(f.message for f in explanation.failures)
