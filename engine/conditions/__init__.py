"""JsonLogic conditions for recipes: validated, compiled to Python, explainable.

Public contract:

* :func:`apply` - evaluate a rule against data (compiles and caches internally).
* :func:`compile_rule` - validate and compile a rule to a fast ``f(data)``.
* :func:`validate_rule` - reject malformed, unknown, too deep or too large rules.
* :func:`explain` - why a rule was falsy, for dry runs.
* :data:`OPERATORS` / :data:`ALLOWED_OPERATORS` - the operator catalog.
* :func:`truthy` - JsonLogic truthiness (``[]`` falsy, ``{}`` truthy), for callers' tests.

Semantics follow json-logic-js; the deliberate decisions are listed in
:mod:`engine.conditions.semantics` and ``docs/conditions.md``.
"""

from engine.conditions.compiler import apply, clear_cache, compile_rule
from engine.conditions.explain import Explanation, Failure, explain
from engine.conditions.interpreter import evaluate
from engine.conditions.operators import (
    ALLOWED_OPERATORS,
    OPERATORS,
    OperatorExample,
    OperatorSpec,
)
from engine.conditions.semantics import EvaluationError, truthy
from engine.conditions.validate import validate_rule

__all__ = [
    "ALLOWED_OPERATORS",
    "OPERATORS",
    "EvaluationError",
    "Explanation",
    "Failure",
    "OperatorExample",
    "OperatorSpec",
    "apply",
    "clear_cache",
    "compile_rule",
    "evaluate",
    "explain",
    "truthy",
    "validate_rule",
]
