"""Run-time helpers shared by the interpreter and by compiled rules.

Compiled rules call these for everything except their inlined fast paths, so both evaluation
routes share one definition of each operator. Iterator bodies and ``try`` alternatives arrive as
callables: ``body(item)`` or, when the rule climbs scopes with ``val``, ``body(item, scope)``.

A *scope* is a tuple of the values above the current data, innermost last: entering an iterator
appends the enclosing data then ``{"index": i}``; a ``try`` fallback appends the data the
failing alternative saw then ``None``. ``{"val": [[n], ...]}`` starts ``n`` entries up.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, Final

from engine.conditions.semantics import (
    EvaluationError,
    invalid_arguments,
    strict_equals,
    to_integer,
    to_js_string,
    to_number,
    truthy,
)

Body = Callable[..., Any]
Scope = tuple[Any, ...]


class _Missing:
    """The marker for "no such key". Not subscriptable, so ``MISSING[key]`` raises TypeError."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
LOOKUP_ERRORS: Final = (KeyError, TypeError, IndexError)


# --------------------------------------------------------------------------- data access


def index_of(key: str) -> int | None:
    """The list index a path segment names (``"0"``, ``"12"``), or None (``"01"``, ``"-1"``)."""
    if key.isascii() and key.isdigit() and (key == "0" or key[0] != "0"):
        return int(key)
    return None


def child(container: Any, key: str, index: int | None, missing: Any = MISSING) -> Any:
    """``container[key]`` with JavaScript property semantics, or ``missing`` when absent.

    Objects are read by key; arrays (lists and tuples) by ``index`` when the segment is a
    canonical index. Anything else (strings, numbers, ``None``) has no children.
    """
    if index is not None and isinstance(container, list | tuple):
        return container[index] if index < len(container) else missing
    try:
        return container[key]
    except LOOKUP_ERRORS:
        return missing


def var_path(path: Any) -> tuple[str, ...]:
    """The segments of a ``var`` path: ``"a.b"`` -> ``("a", "b")``; ``""``/``null`` -> ``()``."""
    if path is None or path == "" or path == []:
        return ()
    return tuple(to_js_string(path).split("."))


def get_path(data: Any, segments: Sequence[str], missing: Any = MISSING) -> Any:
    """The value at ``segments`` under ``data``, or ``missing`` when a segment is absent.

    A ``null`` (or any non-container) met before the last segment also yields ``missing``;
    a ``null`` stored at the last segment is returned as ``None``.
    """
    current = data
    for key in segments:
        current = child(current, key, index_of(key))
        if current is MISSING:
            return missing
    return current


def var(data: Any, path: Any = None) -> Any:
    """``{"var": path}`` without a default: the value, or MISSING when absent."""
    return get_path(data, var_path(path))


def _climb(data: Any, scope: Scope, levels: Any) -> Any:
    n = abs(to_integer(levels))
    if n == 0:
        return data
    return scope[-n] if n <= len(scope) else None


def val_segments(data: Any, scope: Scope, args: Any) -> tuple[Any, tuple[str, ...]]:
    """Where a ``val``/``exists`` path starts and its segments, from the evaluated arguments.

    ``"a"`` or ``["a"]`` is one key (no dot splitting); ``["a", "b", 0]`` a path; a first
    element ``[n]`` starts ``n`` scope levels up instead of at ``data``.
    """
    if not isinstance(args, list):
        return data, () if args is None else (to_js_string(args),)
    start = data
    if args and isinstance(args[0], list):
        if len(args[0]) != 1:
            raise invalid_arguments("a scope climb must look like [n]")
        start = _climb(data, scope, args[0][0])
        args = args[1:]
    return start, tuple(to_js_string(key) for key in args)


def val(data: Any, scope: Scope, args: Any) -> Any:
    """``{"val": args}``: the value at the path, or None when any segment is absent."""
    start, segments = val_segments(data, scope, args)
    return get_path(start, segments, None)


def exists(data: Any, scope: Scope, args: Any) -> bool:
    """``{"exists": args}``: whether the path is present (a stored ``null`` counts)."""
    start, segments = val_segments(data, scope, args)
    return get_path(start, segments) is not MISSING


def missing(data: Any, *keys: Any) -> list[Any]:
    """The ``keys`` whose ``var`` lookup is absent, ``null`` or ``""`` (json-logic-js)."""
    wanted = keys[0] if keys and isinstance(keys[0], list) else keys
    return absent_keys(wanted, [get_path(data, var_path(key), None) for key in wanted])


def absent_keys(keys: Sequence[Any], values: Sequence[Any]) -> list[Any]:
    """The ``keys`` whose looked-up ``values`` are ``null`` or ``""`` (compiled ``missing``)."""
    return [key for key, value in zip(keys, values, strict=True) if value is None or value == ""]


def missing_some(data: Any, need: Any, keys: Any) -> list[Any]:
    """``[]`` when at least ``need`` of ``keys`` are present, else the absent ones."""
    if not isinstance(keys, list):
        raise invalid_arguments("missing_some needs a list of keys as its second argument")
    absent = missing(data, keys)
    return [] if len(keys) - len(absent) >= to_number(need) else absent


# --------------------------------------------------------------------------- eager operators


def spread(value: Any) -> list[Any]:
    """Arguments from a single rule: its array result, or the one value it produced."""
    return value if isinstance(value, list) else [value]


def cat(*values: Any) -> str:
    """The values as JavaScript strings, concatenated; ``null`` contributes nothing."""
    return "".join("" if v is None else to_js_string(v) for v in values)


def substr(source: Any = None, start: Any = 0, length: Any = None) -> str:
    """JavaScript ``String(source).substr(start, length)``; a negative length drops from the end."""
    text = to_js_string(source)
    begin = to_integer(start)
    if begin < 0:
        begin = max(len(text) + begin, 0)
    tail = text[begin:]
    if length is None:
        return tail
    count = to_integer(length)
    return tail[: max(len(tail) + count, 0)] if count < 0 else tail[:count]


def merge(*values: Any) -> list[Any]:
    """The values in order, with arrays flattened one level."""
    merged: list[Any] = []
    for value in values:
        if isinstance(value, list | tuple):
            merged.extend(value)
        else:
            merged.append(value)
    return merged


def contains(needle: Any, haystack: Any) -> bool:
    """``in``: substring test on a string, strict-equality membership on an array, else False."""
    if isinstance(haystack, str):
        return to_js_string(needle) in haystack
    if isinstance(haystack, list | tuple):
        return any(strict_equals(needle, item) for item in haystack)
    return False


def first(*values: Any) -> Any:
    """The first value, or None: ``log`` and the operand of ``!``/``!!``."""
    return values[0] if values else None


def coalesce(*values: Any) -> Any:
    """The first value that is not ``null`` (None when all are)."""
    for value in values:
        if value is not None:
            return value
    return None


def throw(value: Any = None) -> Any:
    """Raise an :class:`EvaluationError`; an object's ``type`` field becomes the error type."""
    error_type = value.get("type") if isinstance(value, dict) else value
    raise EvaluationError(error_type, f"thrown: {to_js_string(error_type)}", payload=value)


def fresh(value: Any) -> Any:
    """A deep copy of a constant array/object, so callers can never mutate a compiled rule."""
    return copy.deepcopy(value) if isinstance(value, list | dict) else value


# --------------------------------------------------------------------------- iterators


def iterate_map(items: Any, body: Body, data: Any, scope: Scope | None) -> list[Any]:
    """``map``: the body's value for each element; ``[]`` when ``items`` is not an array."""
    if not isinstance(items, list | tuple):
        return []
    if scope is None:
        return [body(item) for item in items]
    return [body(item, (*scope, data, {"index": i})) for i, item in enumerate(items)]


def iterate_filter(items: Any, body: Body, data: Any, scope: Scope | None) -> list[Any]:
    """``filter``: the elements whose body is truthy; ``[]`` when ``items`` is not an array."""
    if not isinstance(items, list | tuple):
        return []
    if scope is None:
        return [item for item in items if truthy(body(item))]
    return [
        item for i, item in enumerate(items) if truthy(body(item, (*scope, data, {"index": i})))
    ]


def iterate_reduce(items: Any, body: Body, initial: Any, data: Any, scope: Scope | None) -> Any:
    """``reduce``: folds ``{"current", "accumulator"}`` through the body from ``initial``."""
    if not isinstance(items, list | tuple):
        return initial
    accumulator = initial
    for i, item in enumerate(items):
        context = {"current": item, "accumulator": accumulator}
        if scope is None:
            accumulator = body(context)
        else:
            accumulator = body(context, (*scope, data, {"index": i}))
    return accumulator


def sequence_or_none(items: Any) -> Sequence[Any] | None:
    """``items`` when it is an array (list or tuple), else None (compiled iterators)."""
    return items if isinstance(items, list | tuple) else None


def quantified(name: str, items: Any) -> Sequence[Any]:
    """``items`` when it is an array; raises for ``all``/``some``/``none`` over anything else."""
    if not isinstance(items, list | tuple):
        raise invalid_arguments(f"{name} needs an array, got {to_js_string(items)!r}")
    return items


def iterate_all(items: Any, body: Body, data: Any, scope: Scope | None) -> bool:
    """``all``: every body truthy; False for an empty array; raises for a non-array."""
    sequence = quantified("all", items)
    if not sequence:
        return False
    for i, item in enumerate(sequence):
        result = body(item) if scope is None else body(item, (*scope, data, {"index": i}))
        if not truthy(result):
            return False
    return True


def iterate_some(items: Any, body: Body, data: Any, scope: Scope | None) -> bool:
    """``some``: any body truthy; False for an empty array; raises for a non-array."""
    for i, item in enumerate(quantified("some", items)):
        result = body(item) if scope is None else body(item, (*scope, data, {"index": i}))
        if truthy(result):
            return True
    return False


def iterate_none(items: Any, body: Body, data: Any, scope: Scope | None) -> bool:
    """``none``: no body truthy; True for an empty array; raises for a non-array."""
    quantified("none", items)
    return not iterate_some(items, body, data, scope)


def attempt(alternatives: Sequence[Body], data: Any, scope: Scope | None) -> Any:
    """``try``: the first alternative that does not raise.

    Alternatives after a failure see ``{"type": <error type>}`` as their data. When all fail,
    the last error propagates.
    """
    error: EvaluationError | None = None
    for alternative in alternatives:
        try:
            if error is None:
                return alternative(data) if scope is None else alternative(data, scope)
            context = {"type": error.error_type}
            if scope is None:
                return alternative(context)
            return alternative(context, (*scope, data, None))
        except EvaluationError as failure:
            error = failure
    if error is None:
        raise invalid_arguments("try needs at least one alternative")
    raise error
