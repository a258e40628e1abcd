"""The benchmark corpus: compiled rules give exactly the interpreter's results on generated
orders, and the hand-written equivalents agree with the rules on the corpus data."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bench.conditions_corpus import CORPUS, DATA, Case
from engine.conditions import OPERATORS, EvaluationError, compile_rule, evaluate
from tests.engine.conditions.suites import json_equal

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 600),
    st.sampled_from([0.0, 0.5, 19.99, -2.5, 1e300, 2.0**53]),
    st.sampled_from([math.nan, math.inf, -math.inf]),  # not JSON, but Python data can hold them
    st.sampled_from(["", "0", "12", "SALE-X", "US", "fragile", "apparel", "VIP", "a@example.com"]),
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.just({}), max_leaves=4
)


def _mutated(draw: Any, value: Any, depth: int = 0) -> Any:
    """``value`` with some fields dropped, replaced by other JSON values, or kept."""
    choice = draw(st.integers(0, 9))
    if choice == 0 and depth:
        return draw(VALUES)
    if isinstance(value, dict):
        return {
            key: _mutated(draw, item, depth + 1)
            for key, item in value.items()
            if draw(st.integers(0, 11)) or not depth
        }
    if isinstance(value, list):
        items = [_mutated(draw, item, depth + 1) for item in value]
        return items[: draw(st.integers(0, len(items)))] if choice == 1 else items
    return value


@st.composite
def orders(draw: Any) -> Any:
    return _mutated(draw, copy.deepcopy(DATA))


def _outcome(function: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "value", function(*args)
    except EvaluationError as exc:
        return "error", exc.error_type


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_hand_written_equivalent_agrees_on_the_corpus_data(case: Case) -> None:
    expected = evaluate(case.rule, DATA)
    assert json_equal(case.hand(copy.deepcopy(DATA)), expected)
    assert json_equal(compile_rule(case.rule)(DATA), expected)


def test_corpus_uses_every_classic_operator() -> None:
    used: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for name, args in node.items():
                used.add(name)
                walk(args)

    for case in CORPUS:
        walk(case.rule)
    # every jsonlogic.com operator but log (panzi-json-logic prints from it)
    classic = {name for name, spec in OPERATORS.items() if not spec.extension} - {"log"}
    assert classic <= used, classic - used
    assert len(CORPUS) >= 30


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=orders(), index=st.integers(0, len(CORPUS) - 1))
def test_compiled_corpus_rules_agree_with_the_interpreter(data: Any, index: int) -> None:
    rule = CORPUS[index].rule
    compiled = _outcome(compile_rule(rule), copy.deepcopy(data))
    interpreted = _outcome(evaluate, rule, copy.deepcopy(data))
    assert compiled[0] == interpreted[0], (compiled, interpreted)
    if compiled[0] == "error":
        assert compiled[1] == interpreted[1]
    else:
        assert json_equal(compiled[1], interpreted[1]) or compiled[1] != compiled[1]
        assert type(compiled[1]) is type(interpreted[1])
