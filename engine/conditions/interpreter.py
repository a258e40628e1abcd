"""A tree-walking evaluator for validated JsonLogic rules.

It is the reference the compiler is tested against, the evaluator behind :func:`explain`, and
the fallback for rules too large for the Python compiler. It shares every operator definition
with compiled rules through :mod:`engine.conditions.runtime` and
:mod:`engine.conditions.semantics`; only the control flow is its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from engine.conditions import arithmetic, runtime as rt, semantics as sem
from engine.conditions.operators import OPERATORS
from engine.conditions.validate import is_operation

Scope = tuple[Any, ...]
_Handler = Callable[[str, Any, Any, Scope], Any]

EAGER: Final[dict[str, Callable[..., Any]]] = {
    "+": arithmetic.add,
    "-": arithmetic.subtract,
    "*": arithmetic.multiply,
    "/": arithmetic.divide,
    "%": arithmetic.remainder,
    "max": arithmetic.maximum,
    "min": arithmetic.minimum,
    "cat": rt.cat,
    "substr": rt.substr,
    "merge": rt.merge,
    "in": rt.contains,
    "log": rt.first,
    "throw": rt.throw,
}
"""Operators that evaluate all their arguments, then apply a function to the values."""


def _not_loose(a: Any, b: Any) -> bool:
    return not sem.loose_equals(a, b)


def _not_strict(a: Any, b: Any) -> bool:
    return not sem.strict_equals(a, b)


COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "==": sem.loose_equals,
    "===": sem.strict_equals,
    "!=": _not_loose,
    "!==": _not_strict,
    "<": sem.less_than,
    "<=": sem.less_equal,
    ">": sem.greater_than,
    ">=": sem.greater_equal,
}
"""Pairwise tests; with more than two arguments every adjacent pair must pass."""


def spread_checked(value: Any, name: str) -> list[Any]:
    """The argument list a chained rule produced for ``name``, checked against its arity."""
    values = rt.spread(value)
    spec = OPERATORS[name]
    if len(values) < spec.min_args or (spec.max_args is not None and len(values) > spec.max_args):
        raise sem.invalid_arguments(f"{name!r} got {len(values)} arguments from a chained rule")
    return values


def evaluate(rule: Any, data: Any, scope: Scope = ()) -> Any:
    """The value of a validated ``rule`` for ``data`` (raises :class:`EvaluationError`)."""
    if isinstance(rule, dict):
        if not rule:
            return {}
        ((name, args),) = rule.items()
        return _HANDLERS.get(name, _eager)(name, args, data, scope)
    if isinstance(rule, list):
        return [evaluate(item, data, scope) for item in rule]
    return rule


def arguments(name: str, args: Any, data: Any, scope: Scope) -> list[Any]:
    """The evaluated argument list of operator ``name`` (shorthand and chaining applied)."""
    if isinstance(args, list):
        return [evaluate(arg, data, scope) for arg in args]
    if OPERATORS[name].chains and is_operation(args):
        return spread_checked(evaluate(args, data, scope), name)
    return [evaluate(args, data, scope)]


def _eager(name: str, args: Any, data: Any, scope: Scope) -> Any:
    return EAGER[name](*arguments(name, args, data, scope))


def _var(name: str, args: Any, data: Any, scope: Scope) -> Any:
    nodes = args if isinstance(args, list) else [args]
    path = evaluate(nodes[0], data, scope) if nodes else None
    value = rt.var(data, path)
    if value is rt.MISSING:
        return evaluate(nodes[1], data, scope) if len(nodes) > 1 else None
    return value


def _val(name: str, args: Any, data: Any, scope: Scope) -> Any:
    return rt.val(data, scope, arguments(name, args, data, scope))


def _exists(name: str, args: Any, data: Any, scope: Scope) -> Any:
    return rt.exists(data, scope, arguments(name, args, data, scope))


def _missing(name: str, args: Any, data: Any, scope: Scope) -> Any:
    return rt.missing(data, *arguments(name, args, data, scope))


def _missing_some(name: str, args: Any, data: Any, scope: Scope) -> Any:
    return rt.missing_some(data, *arguments(name, args, data, scope))


def _if(name: str, args: Any, data: Any, scope: Scope) -> Any:
    i = 0
    while i + 1 < len(args):
        if sem.truthy(evaluate(args[i], data, scope)):
            return evaluate(args[i + 1], data, scope)
        i += 2
    return evaluate(args[i], data, scope) if i < len(args) else None


def _and(name: str, args: Any, data: Any, scope: Scope) -> Any:
    value: Any = False
    for arg in args:
        value = evaluate(arg, data, scope)
        if not sem.truthy(value):
            return value
    return value


def _or(name: str, args: Any, data: Any, scope: Scope) -> Any:
    value: Any = False
    for arg in args:
        value = evaluate(arg, data, scope)
        if sem.truthy(value):
            return value
    return value


def _coalesce(name: str, args: Any, data: Any, scope: Scope) -> Any:
    for arg in args if isinstance(args, list) else [args]:
        value = evaluate(arg, data, scope)
        if value is not None:
            return value
    return None


def _not(name: str, args: Any, data: Any, scope: Scope) -> Any:
    return not sem.truthy(rt.first(*arguments(name, args, data, scope)))


def _not_not(name: str, args: Any, data: Any, scope: Scope) -> Any:
    return sem.truthy(rt.first(*arguments(name, args, data, scope)))


def _compare(name: str, args: Any, data: Any, scope: Scope) -> bool:
    test = COMPARISONS[name]
    left = evaluate(args[0], data, scope)
    for node in args[1:]:
        right = evaluate(node, data, scope)
        if not test(left, right):
            return False
        left = right
    return True


def _body(node: Any) -> Callable[[Any, Scope], Any]:
    def body(item: Any, scope: Scope) -> Any:
        return evaluate(node, item, scope)

    return body


_ITERATE: Final = {
    "map": rt.iterate_map,
    "filter": rt.iterate_filter,
    "all": rt.iterate_all,
    "some": rt.iterate_some,
    "none": rt.iterate_none,
}


def _iterate(name: str, args: Any, data: Any, scope: Scope) -> Any:
    items = evaluate(args[0], data, scope)
    if name == "reduce":
        initial = evaluate(args[2], data, scope) if len(args) > 2 else None
        return rt.iterate_reduce(items, _body(args[1]), initial, data, scope)
    return _ITERATE[name](items, _body(args[1]), data, scope)


def _try(name: str, args: Any, data: Any, scope: Scope) -> Any:
    alternatives = [_body(node) for node in (args if isinstance(args, list) else [args])]
    return rt.attempt(alternatives, data, scope)


def _preserve(name: str, args: Any, data: Any, scope: Scope) -> Any:
    return rt.fresh(args)


_HANDLERS: Final[dict[str, _Handler]] = {
    "var": _var,
    "val": _val,
    "exists": _exists,
    "missing": _missing,
    "missing_some": _missing_some,
    "if": _if,
    "?:": _if,
    "and": _and,
    "or": _or,
    "??": _coalesce,
    "!": _not,
    "!!": _not_not,
    "try": _try,
    "preserve": _preserve,
    **dict.fromkeys(COMPARISONS, _compare),
    **dict.fromkeys(("map", "filter", "reduce", "all", "some", "none"), _iterate),
}
