"""Compiling JsonLogic rules to Python functions, with a bounded cache.

:func:`compile_rule` validates a rule, generates Python source for it
(:mod:`engine.conditions.codegen`) and compiles that once; compiled functions are cached by
the rule's canonical JSON (``json.dumps(rule, sort_keys=True)``), so equal rules share one
function. :func:`apply` is ``compile_rule(rule)(data)`` through the same cache.

A rule the Python compiler cannot take (nesting beyond what its parser allows, which only
rules validated with raised limits can reach) falls back to the interpreter, with the same
results.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from engine.conditions.codegen import HELPERS, generate
from engine.conditions.interpreter import evaluate
from engine.conditions.validate import DEFAULT_MAX_DEPTH, DEFAULT_MAX_NODES, validate_rule
from engine.errors import ConditionError

CACHE_SIZE = 1024
"""How many compiled rules each cache keeps (least recently used are dropped first)."""

CompiledRule = Callable[[Any], Any]


def canonical_json(rule: Any) -> str:
    """The cache key of ``rule``: its JSON with sorted keys; ConditionError if not JSON."""
    try:
        return json.dumps(rule, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        validate_rule(rule)  # raises with a path (too deep, too large or not JSON)
        raise ConditionError("", f"the rule is not JSON: {exc}") from exc


def build(rule: Any) -> CompiledRule:
    """A function evaluating the already validated ``rule`` (uncached).

    The rule's generated source is executed in a namespace holding only fixed helpers and the
    rule's constants, and no builtins. Rules too deep for Python's compiler are interpreted.
    """
    try:
        source, entry, constants = generate(rule)
        code = compile(source, "<jsonlogic rule>", "exec")
    except (RecursionError, SyntaxError, MemoryError):
        return _interpreted(rule)
    namespace = {**HELPERS, **constants}
    exec(code, namespace)  # noqa: S102 - generated from a fixed vocabulary, see codegen
    function: CompiledRule = namespace[entry]
    return function


def _interpreted(rule: Any) -> CompiledRule:
    def run(data: Any) -> Any:
        return evaluate(rule, data)

    return run


@lru_cache(maxsize=CACHE_SIZE)
def _build_cached(key: str) -> CompiledRule:
    return build(json.loads(key))


@lru_cache(maxsize=CACHE_SIZE)
def _checked(key: str) -> CompiledRule:
    rule = json.loads(key)
    validate_rule(rule)
    return _build_cached(key)


def compile_rule(
    rule: Any, *, max_depth: int = DEFAULT_MAX_DEPTH, max_nodes: int = DEFAULT_MAX_NODES
) -> CompiledRule:
    """A function ``f(data)`` returning what :func:`apply` returns for ``rule`` and ``data``.

    Raises :class:`~engine.errors.ConditionError` when the rule is invalid (see
    :func:`~engine.conditions.validate_rule`, which receives the limits); ``f`` raises
    :class:`~engine.conditions.EvaluationError` when evaluation fails.
    """
    key = canonical_json(rule)
    validate_rule(rule, max_depth=max_depth, max_nodes=max_nodes)
    return _build_cached(key)


def apply(rule: Any, data: Any = None) -> Any:
    """The value of JsonLogic ``rule`` for ``data``.

    Raises :class:`~engine.errors.ConditionError` for an invalid rule (default limits) and
    :class:`~engine.conditions.EvaluationError` when evaluation fails.
    """
    return _checked(canonical_json(rule))(data)


def clear_cache() -> None:
    """Drop every cached compiled rule."""
    _checked.cache_clear()
    _build_cached.cache_clear()
