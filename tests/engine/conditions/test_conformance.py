"""Conformance: jsonlogic.com/tests.json (all must pass) and the community compat suites.

Every compat case runs; the ones where Sous deliberately differs are listed in
:data:`DEVIATIONS` with the reason, and are marked ``xfail(strict=True)`` so a deviation that
starts passing fails the run and gets noticed.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.conditions import EvaluationError, apply, evaluate, validate_rule
from engine.errors import ConditionError
from tests.engine.conditions.suites import (
    EXTENSION_FILES,
    MISSING_REASON,
    OFFICIAL,
    Case,
    compat_cases,
    compat_files,
    json_equal,
    official_cases,
)

_JS_EQUALITY = (
    "Sous follows JavaScript abstract equality for == and != (as json-logic-js does): it never "
    "raises, so a value that cannot be converted to a number is simply unequal; the Core suite "
    "raises NaN instead."
)
_NULL_EQUALITY = (
    "JavaScript (and json-logic-js): null == 0 is false, null only equals null; the Core suite "
    "treats null as 0 here. A missing field must not equal 0 in a merchant's condition."
)
_OBJECT_EQUALITY = (
    "JavaScript abstract equality compares arrays/objects by identity, or by their string form "
    "against a primitive ([1] == 5 is '1' == 5, false); the Core suite raises NaN."
)

DEVIATIONS: dict[tuple[str, str], str] = {
    ("comparison/softEquals.json", "== with (2023n, 2024-01-01s)"): _JS_EQUALITY,
    ("comparison/softEquals.json", "== with (1n, As)"): _JS_EQUALITY,
    ("comparison/softEquals.json", "== with (null, 0)"): _NULL_EQUALITY,
    ("comparison/softEquals.json", "== with [] and [1]"): _OBJECT_EQUALITY,
    ("comparison/softEquals.json", "== with [1] and 5"): _OBJECT_EQUALITY,
    ("comparison/softEquals.json", "== with {} and 1"): _OBJECT_EQUALITY,
    ("comparison/softEquals.json", "== with 1 and {}"): _OBJECT_EQUALITY,
    ("comparison/softNotEquals.json", "!= with (2023n, 2024-01-01s)"): _JS_EQUALITY,
    ("comparison/softNotEquals.json", "!= with (1n, As)"): _JS_EQUALITY,
    ("comparison/softNotEquals.json", "!= with (null, 0)"): _NULL_EQUALITY,
    ("comparison/softNotEquals.json", "!= with [] and [1]"): _OBJECT_EQUALITY,
    ("comparison/softNotEquals.json", "!= with [1] and 5"): _OBJECT_EQUALITY,
    ("comparison/softNotEquals.json", "!= with {} and 1"): _OBJECT_EQUALITY,
    ("comparison/softNotEquals.json", "!= with 1 and {}"): _OBJECT_EQUALITY,
}
"""``(suite file, case description)`` -> why Sous deliberately gives a different answer."""

_OFFICIAL = official_cases()
_COMPAT = compat_cases()


def _official_params() -> list[Any]:
    if not _OFFICIAL:
        return [pytest.param(None, None, None, marks=pytest.mark.skip(reason=MISSING_REASON))]
    return [pytest.param(*case, id=f"{i}") for i, case in enumerate(_OFFICIAL)]


def _compat_params() -> list[Any]:
    if not _COMPAT:
        return [pytest.param(None, marks=pytest.mark.skip(reason=MISSING_REASON))]
    params = []
    for case in _COMPAT:
        reason = DEVIATIONS.get((case.file, case.description))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.mark.parametrize(("rule", "data", "expected"), _official_params())
def test_official_case(rule: Any, data: Any, expected: Any) -> None:
    assert json_equal(apply(rule, data), expected)


def test_official_suite_is_complete() -> None:
    if not OFFICIAL.exists():
        pytest.skip(MISSING_REASON)
    assert len(_OFFICIAL) == 277


def check_case(case: Case, run: Any) -> None:
    """Assert that ``run(rule, data)`` gives the case's result, or raises its error type."""
    if case.error is None:
        assert json_equal(run(case.rule, case.data), case.result)
        return
    with pytest.raises(ConditionError) as caught:
        run(case.rule, case.data)
    if isinstance(caught.value, EvaluationError):
        assert caught.value.error_type == case.error
    else:  # rejected by validation: only ever for malformed arguments
        assert case.error == "Invalid Arguments", caught.value


@pytest.mark.parametrize("case", _compat_params())
def test_compat_case(case: Case) -> None:
    check_case(case, apply)


def interpret(rule: Any, data: Any) -> Any:
    """Validate, then evaluate with the interpreter (the compiler's reference)."""
    validate_rule(rule)
    return evaluate(rule, data)


@pytest.mark.parametrize("case", _compat_params())
def test_compat_case_interpreted(case: Case) -> None:
    check_case(case, interpret)


def test_every_deviation_names_an_existing_case() -> None:
    if not _COMPAT:
        pytest.skip(MISSING_REASON)
    known = {(case.file, case.description) for case in _COMPAT}
    assert set(DEVIATIONS) <= known


def test_deviations_are_only_in_classic_equality_suites() -> None:
    files = {file for file, _ in DEVIATIONS}
    assert files == {"comparison/softEquals.json", "comparison/softNotEquals.json"}
    assert not files & EXTENSION_FILES


def test_every_suite_file_is_run() -> None:
    if not _COMPAT:
        pytest.skip(MISSING_REASON)
    assert {case.file for case in _COMPAT} == set(compat_files())
    assert len(_COMPAT) == 1138
