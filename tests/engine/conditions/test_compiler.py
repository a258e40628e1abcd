"""compile_rule: same answers as apply and the interpreter, safe source, caching, fast paths."""

from __future__ import annotations

import ast
import copy
import enum
import io
import keyword
import math
import re
import sys
import tokenize
from typing import Any

import pytest

from engine.conditions import EvaluationError, apply, compile_rule, evaluate
from engine.conditions.codegen import HELPERS, generate
from engine.conditions.compiler import (
    CACHE_SIZE,
    _build_cached,
    _checked,
    build,
    canonical_json,
)
from engine.errors import ConditionError
from tests.engine.conditions.suites import (
    MISSING_REASON,
    compat_cases,
    json_equal,
    official_cases,
)

BENCHMARK_RULE = {
    "and": [
        {"<=": [{"var": "product.inventory_level"}, 0]},
        {"==": [{"var": "product.inventory_tracking"}, "product"]},
        {"in": ["sale", {"var": "product.tags"}]},
    ]
}


def _outcome(function: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "value", function(*args)
    except EvaluationError as exc:
        return "error", exc.error_type


def _same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] == b[0] == "value" and a[1] is b[1]:  # the data's own value (NaN included)
        return True
    return a[0] == b[0] and (a[1] == b[1] if a[0] == "error" else json_equal(a[1], b[1]))


def _all_cases() -> list[Any]:
    cases = [pytest.param(r, d, id=f"official-{i}") for i, (r, d, _) in enumerate(official_cases())]
    for case in compat_cases():
        try:
            compile_rule(case.rule)
        except ConditionError:
            continue  # rejected by validation: nothing to compare
        cases.append(pytest.param(case.rule, case.data, id=case.id))
    return cases or [pytest.param(None, None, marks=pytest.mark.skip(reason=MISSING_REASON))]


@pytest.mark.parametrize(("rule", "data"), _all_cases())
def test_compiled_matches_apply_and_the_interpreter(rule: Any, data: Any) -> None:
    compiled = _outcome(compile_rule(rule), copy.deepcopy(data))
    assert _same(compiled, _outcome(apply, rule, copy.deepcopy(data)))
    assert _same(compiled, _outcome(evaluate, rule, copy.deepcopy(data)))


# --------------------------------------------------------------------------- source safety

NASTY = "__import__('os').system('echo pwned')"
NASTY_RULE = {
    "and": [
        {"==": [{"var": NASTY}, NASTY]},
        {"in": [NASTY, {"var": [f"{NASTY}.x", NASTY]}]},
        {"val": [NASTY, '"""', "\n"]},
        {"cat": [NASTY, 1e300, -5, True, None, "\\"]},
        {"preserve": {NASTY: [NASTY, "'"]}},
        {"map": [{"var": "items"}, {"var": "')\nimport os\n#"}]},
        {"missing": ["a'b", 'c"d', "0", "e.1"]},
        {"<": [0, {"var": "0"}, 10]},
        {"try": [{"throw": NASTY}, {"var": "type"}]},
    ]
}
_ALLOWED_NAME = re.compile(r"_[kptf]\d+|_[ioca]|[ds]|__class__|append|get")


def _assert_names_only(source: str) -> None:
    """No literal in ``source``: an f-string (cat) may only hold fields, checked likewise."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        assert token.type != tokenize.NUMBER, token
        if token.type == tokenize.STRING:
            assert token.string.startswith('f"') and token.string.endswith('"'), token
            joined = ast.parse(token.string, mode="eval").body
            assert isinstance(joined, ast.JoinedStr), token
            assert all(isinstance(v, ast.FormattedValue) for v in joined.values), token
            _assert_names_only(token.string[2:-1])
        if token.type == tokenize.NAME:
            name = token.string
            assert keyword.iskeyword(name) or name in HELPERS or _ALLOWED_NAME.fullmatch(name), name


def test_no_rule_value_becomes_source_text() -> None:
    source, entry, constants = generate(NASTY_RULE)
    assert NASTY not in source
    assert "os" not in source.replace("_LOOKUP", "")
    _assert_names_only(source)
    assert NASTY in constants.values()
    assert re.fullmatch(r"_f\d+", entry)


def test_nasty_rule_evaluates_as_data() -> None:
    data = {NASTY: NASTY, "items": [{"')\nimport os\n#": 1}]}
    assert compile_rule(NASTY_RULE)(data) == evaluate(NASTY_RULE, data) is False
    assert HELPERS["__builtins__"] == {}


def test_benchmark_rule_compiles_to_shared_lookups_and_inline_comparisons() -> None:
    source, _, _ = generate(BENCHMARK_RULE)
    assert source.count("except _LOOKUP:") == 4  # product, then its three fields
    assert "_T(" not in source
    assert "_var(" not in source
    assert " <= " in source
    assert " == " in source
    assert " in _p" in source


# --------------------------------------------------------------------------- caching


def test_equal_rules_share_one_compiled_function() -> None:
    rule = {"==": [{"preserve": {"a": 1, "b": 2}}, {"var": "x"}]}
    reordered = {"==": [{"preserve": {"b": 2, "a": 1}}, {"var": "x"}]}
    assert compile_rule(rule) is compile_rule(copy.deepcopy(rule))
    assert compile_rule(rule) is compile_rule(reordered)
    assert canonical_json(rule) == canonical_json(reordered)


def test_apply_uses_the_cache() -> None:
    rule = {"+": [{"var": "n"}, 41]}
    apply(rule, {"n": 1})
    hits = _checked.cache_info().hits
    assert apply(rule, {"n": 1}) == 42
    assert _checked.cache_info().hits == hits + 1


def test_caches_are_bounded() -> None:
    assert _checked.cache_info().maxsize == CACHE_SIZE
    assert _build_cached.cache_info().maxsize == CACHE_SIZE


def test_apply_rejects_a_rule_too_deep_to_serialise() -> None:
    rule: Any = 1
    for _ in range(5000):
        rule = [rule]
    with pytest.raises(ConditionError, match="deeper than 64"):
        apply(rule, None)


# --------------------------------------------------------------------------- fast paths


class Level(enum.IntEnum):
    EMPTY = 0


FAST_PATH_RULES = [
    {"<=": [{"var": "x"}, 0]},
    {">": [0, {"var": "x"}]},
    {"<": [0, {"var": "x"}, 10]},
    {"<=": [{"var": "x"}, "m"]},
    {"==": [{"var": "x"}, "product"]},
    {"!=": ["1", {"var": "x"}]},
    {"===": [{"var": "x"}, 0]},
    {"!==": [{"var": "x"}, True]},
    {"==": [{"var": "x"}, None]},
    {"in": ["sale", {"var": "x"}]},
    {"in": ["sale", {"merge": [{"var": "x"}]}]},
    {"in": ["sale", {"merge": [{"var": "x"}, {"var": "y"}]}]},
    {"in": [{"var": "x"}, {"merge": [["sale", 5], {"var": "y"}, "n", None]}]},
    {"in": [{"var": "x"}, {"map": [{"var": "y"}, {"var": ""}]}]},
    {"==": [{"+": [{"var": "x"}, 0]}, 1]},
    {"and": [{"var": "x"}, {"!": {"var": "x"}}]},
    {"or": [{"var": "x"}, {"??": [{"var": "y"}, 0]}]},
    {">": [{"var": "x"}, {"var": "y"}]},
    {"<": [{"*": [{"var": "x"}, 2]}, {"var": "x"}]},
    {"==": [{"-": [{"var": "x"}, 0.5]}, 1]},
    {"/": [{"var": "x"}, 2.5]},
    {">=": [{"/": [{"-": [{"var": "x"}, {"var": "y"}]}, {"var": "x"}]}, 0.3]},
    {">": [{"+": [{"-": [{"var": "x"}, 1.5]}, 0.5]}, 1]},
    {"/": [1.5, {"var": "x"}]},
    {"%": [{"var": "x"}, 3]},
    {"max": [{"var": "x"}, 1]},
    {"<": [{"min": [{"var": "x"}, 1]}, 2]},
    {"cat": ["n=", {"var": "x"}, {"-": [{"var": "x"}, 1]}]},
]
FAST_PATH_DATA = [
    0,
    -1.5,
    5,
    True,
    False,
    "0",
    "1",
    "abc",
    "product",
    "wholesale",
    None,
    [],
    ["sale"],
    ("sale",),
    {},
    Level.EMPTY,
    "n",
    2.5,
    1e308,
    10**400,
    math.nan,  # not JSON, but Python data can hold non-finite floats: the interpreter raises
    math.inf,
    -math.inf,
]


@pytest.mark.parametrize("rule", FAST_PATH_RULES, ids=canonical_json)
@pytest.mark.parametrize("value", FAST_PATH_DATA, ids=repr)
def test_fast_paths_fall_back_to_full_semantics(rule: Any, value: Any) -> None:
    data = {"x": value, "y": value}
    assert _same(_outcome(compile_rule(rule), data), _outcome(evaluate, rule, data))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, True),
        (-2, True),
        (3, False),
        (True, False),
        ("0", True),
        (None, True),
        (Level.EMPTY, True),
    ],
)
def test_compare_with_constant_uses_javascript_coercion(value: Any, expected: bool) -> None:
    assert compile_rule({"<=": [{"var": "x"}, 0]})({"x": value}) is expected


def test_in_with_constant_needle_handles_strings_and_non_arrays() -> None:
    check = compile_rule({"in": ["sale", {"var": "x"}]})
    assert check({"x": "wholesale"}) is True
    assert check({"x": ("sale",)}) is True
    assert check({"x": None}) is False
    assert check({"x": {"sale": 1}}) is False


@pytest.mark.parametrize("wrapper", ["!", "and", "+"])
def test_deeply_nested_rules_compile_by_splitting_into_functions(wrapper: str) -> None:
    rule: Any = {"var": "x"}
    for _ in range(150):
        rule = {wrapper: [rule]}
    source, _, _ = generate(rule)
    assert source.count("def ") > 5
    compiled = compile_rule(rule, max_depth=200)
    assert compiled.__code__.co_filename == "<jsonlogic rule>"
    for x in (0, 3):
        assert json_equal(compiled({"x": x}), evaluate(rule, {"x": x}))


def test_rules_python_cannot_compile_fall_back_to_the_interpreter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def too_deep(rule: Any) -> Any:
        raise RecursionError

    monkeypatch.setattr("engine.conditions.compiler.generate", too_deep)
    rule = {"!": [{"var": "x"}]}
    compiled = build(rule)
    assert compiled.__code__.co_filename != "<jsonlogic rule>"
    assert compiled({"x": 0}) is True
    assert compiled({"x": 1}) is False


def test_compiled_rules_raise_evaluation_errors() -> None:
    with pytest.raises(EvaluationError) as caught:
        compile_rule({"/": [{"var": "x"}, 0]})({"x": 1})
    assert caught.value.error_type == "NaN"
    assert isinstance(caught.value, ConditionError)


SIBLING_RULES = [
    {"missing": ["a.b.x", "a.b.y", "a.b.z"]},
    {"!": {"missing": ["a.b.x", "a.b.y", "a.b.z"]}},
    {"missing_some": [2, ["a.b.x", "a.b.y", "a.c", "a.b.z"]]},
    {"!": {"missing_some": [1, ["a.b.x", "a.c", "a.b.y"]]}},
    {"cat": [{"var": ["a.b.x", "-"]}, {"var": ["a.b.y", 0]}, {"var": "a.b.z"}]},
    {"if": [{"var": ["a.b.x", 1]}, {"var": ["a.b.y", 2]}, {"var": ["a.b.z", 3]}]},
]
SIBLING_PARENTS = [
    None,
    {},
    {"x": 1, "y": "", "z": None},
    {"x": "a", "y": "b", "z": "c"},
    {"y": [0], "z": False},
    ["p", "q"],
    "xyz",
    7,
    Level.EMPTY,
]


@pytest.mark.parametrize("constant", [1.0, 4.9e291, 2.0**969, 1e292, 1e308])
@pytest.mark.parametrize("name", ["+", "-"])
def test_finite_plus_a_constant_is_checked_unless_it_cannot_overflow(
    name: str, constant: float
) -> None:
    rule = {">": [{name: [{"*": [{"var": "x"}, 1.0]}, constant]}, 0]}
    for x in (math.ulp(0.0), 1.0, 1e308, sys.float_info.max, -sys.float_info.max):
        data = {"x": x}
        assert _same(_outcome(compile_rule(rule), data), _outcome(evaluate, rule, data))


def test_in_over_merge_searches_each_array_without_merging() -> None:
    rule = {"in": ["vip", {"merge": [{"var": "a.tags"}, {"var": "b.tags"}]}]}
    source, _, _ = generate(rule)
    assert "[*" not in source  # no merged list on the fast path
    check = compile_rule(rule)
    assert check({"a": {"tags": ["x"]}, "b": {"tags": ["vip"]}}) is True
    assert check({"a": {"tags": "vip"}, "b": {"tags": []}}) is True  # a string is one element
    assert check({"a": {"tags": ("vip",)}}) is True
    assert check({"a": {"tags": ["VIP"]}, "b": {"tags": None}}) is False


def test_keys_of_one_parent_are_read_after_one_dict_check() -> None:
    source, _, _ = generate(SIBLING_RULES[0])
    assert source.count("__class__ is _dict") == 1
    assert source.count(".get(") == 3


@pytest.mark.parametrize("rule", SIBLING_RULES, ids=canonical_json)
@pytest.mark.parametrize("parent", SIBLING_PARENTS, ids=repr)
def test_keys_of_one_parent_keep_the_interpreter_results(rule: Any, parent: Any) -> None:
    for data in ({"a": {"b": parent, "c": "c"}}, {"a": {"b": parent}}, {"a": parent}, None):
        assert _same(_outcome(compile_rule(rule), data), _outcome(evaluate, rule, data))


@pytest.mark.parametrize(
    "items",
    [
        [{"sku": "A"}, {"sku": "GIFT"}],
        [{"sku": "A"}, {"other": "GIFT"}],
        [{"sku": "GIFT"}, None, "GIFT", 3, ["GIFT"], {"sku": 1.5}],
        [None, "sku", {"sku": ["GIFT"]}],
        [],
        None,
        "GIFT",
        {"sku": "GIFT"},
        7,
    ],
)
def test_in_over_map_of_a_lookup_searches_without_building_the_list(items: Any) -> None:
    rule = {"in": ["GIFT", {"map": [{"var": "items"}, {"var": "sku"}]}]}
    source, _, _ = generate(rule)
    assert "_o" not in source
    data = {"items": items}
    assert compile_rule(rule)(data) is evaluate(rule, data)


@pytest.mark.parametrize(
    "credit", [None, 0, 5, 300, 241.75, 1e308, math.inf, -math.inf, math.nan, True, "300", [1]]
)
def test_comparison_with_an_int_default_tests_ints_first(credit: Any) -> None:
    rule = {">": [{"var": ["c.credit", 0]}, {"var": "total"}]}
    assert "is _int or" in generate(rule)[0]
    for data in ({"c": {"credit": credit}, "total": 241.75}, {"c": {}, "total": 2}, {"c": 1}):
        try:
            expected: Any = evaluate(rule, data)
        except EvaluationError as exc:
            with pytest.raises(type(exc)):
                compile_rule(rule)(data)
        else:
            assert repr(compile_rule(rule)(data)) == repr(expected)
