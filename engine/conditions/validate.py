"""Structural validation of JsonLogic rules, before anything is compiled or evaluated.

Paths name the offending node: an operation is named by where it sits plus its operator
(``and[1].in``), an argument by its operation plus the index (``and[1].in[0]``); a shorthand
single argument (``{"!": {"var": "x"}}``) sits at its operation's path (``!.var``).
"""

from __future__ import annotations

import math
from typing import Any

from engine.conditions.operators import OPERATORS, OperatorSpec
from engine.errors import ConditionError, unknown

DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_NODES = 5000

_ITERATORS = frozenset({"map", "filter", "reduce", "all", "some", "none"})
_NEEDS_BODY = frozenset({"map", "filter"})


def is_operation(value: Any) -> bool:
    """True for a one-key object: a value in rule position that is evaluated as an operation."""
    return isinstance(value, dict) and len(value) == 1


def join_path(location: str, name: str) -> str:
    """The path of operator ``name`` sitting at ``location``."""
    return f"{location}.{name}" if location else name


def _arity_text(spec: OperatorSpec) -> str:
    low, high = spec.min_args, spec.max_args
    if high is None:
        return f"at least {low} argument{'s' if low != 1 else ''}"
    if low == high:
        return f"exactly {low} argument{'s' if low != 1 else ''}"
    return f"{low} to {high} arguments"


class _Validator:
    def __init__(self, max_depth: int, max_nodes: int) -> None:
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.nodes = 0

    def _enter(self, value: Any, location: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise ConditionError(location, f"the rule has more than {self.max_nodes} nodes")
        if depth > self.max_depth and isinstance(value, dict | list):
            if is_operation(value):
                location = join_path(location, str(next(iter(value))))
            raise ConditionError(location, f"the rule nests deeper than {self.max_depth} levels")

    def node(self, value: Any, location: str, depth: int) -> None:
        """Check a value in rule position (evaluated: operations run, arrays map)."""
        self._enter(value, location, depth)
        if isinstance(value, dict):
            if not value:
                return  # {} is a literal empty object
            if len(value) != 1:
                keys = ", ".join(repr(k) for k in list(value)[:5])
                raise ConditionError(
                    location,
                    f"an operation must have exactly one key, found {len(value)} ({keys}); "
                    'wrap literal objects in {"preserve": ...}',
                )
            ((name, args),) = value.items()
            self.operation(name, args, location, depth)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.node(item, f"{location}[{i}]", depth + 1)
        else:
            self.scalar(value, location)

    def operation(self, name: Any, args: Any, location: str, depth: int) -> None:
        if not isinstance(name, str):
            raise ConditionError(location, f"object keys must be strings, got {name!r}")
        spec = OPERATORS.get(name)
        if spec is None:
            raise ConditionError(join_path(location, name), unknown("operator", name, OPERATORS))
        path = join_path(location, name)
        if name == "preserve":
            self.data(args, path, depth + 1)
            return
        if isinstance(args, list):
            children = [(arg, f"{path}[{i}]") for i, arg in enumerate(args)]
            count: int | None = len(args)
        elif spec.array_only:
            raise ConditionError(path, f"{name!r} takes a list of arguments")
        else:
            children = [(args, path)]
            count = None if spec.chains and is_operation(args) else 1
        if count is not None and (
            count < spec.min_args or (spec.max_args is not None and count > spec.max_args)
        ):
            raise ConditionError(path, f"{name!r} takes {_arity_text(spec)}, got {count}")
        if name in _ITERATORS and isinstance(args, list):
            self.iterator(name, args, path)
        for child, child_location in children:
            self.node(child, child_location, depth + 1)

    def iterator(self, name: str, args: list[Any], path: str) -> None:
        source = args[0]
        if source is None or isinstance(source, bool | int | float | str):
            raise ConditionError(
                f"{path}[0]", f"{name!r} needs an array or a rule producing one, got {source!r}"
            )
        if name in _NEEDS_BODY and args[1] is None:
            raise ConditionError(f"{path}[1]", f"{name!r} needs a rule, got null")

    def data(self, value: Any, location: str, depth: int) -> None:
        """Check a value that is never evaluated (the argument of ``preserve``)."""
        self._enter(value, location, depth)
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ConditionError(location, f"object keys must be strings, got {key!r}")
                self.data(item, f"{location}.{key}", depth + 1)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.data(item, f"{location}[{i}]", depth + 1)
        else:
            self.scalar(value, location)

    @staticmethod
    def scalar(value: Any, location: str) -> None:
        if value is None or isinstance(value, bool | int | str):
            return
        if isinstance(value, float):
            if math.isfinite(value):
                return
            raise ConditionError(location, f"{value!r} is not a JSON number")
        raise ConditionError(location, f"{type(value).__name__} is not a JSON value")


def validate_rule(
    rule: Any, *, max_depth: int = DEFAULT_MAX_DEPTH, max_nodes: int = DEFAULT_MAX_NODES
) -> None:
    """Return when ``rule`` is a well-formed JsonLogic rule; raise ConditionError otherwise.

    Rejected: unknown operators; objects with more than one key in rule position; operators
    given the wrong number of arguments, or a non-list where a list is required; iterators
    over a literal that cannot be an array; values that are not JSON; rules nesting deeper than
    ``max_depth`` (operations, arrays and objects each add a level) or with more than
    ``max_nodes`` operations and values. The error's ``path`` names the offending node.
    """
    _Validator(max_depth, max_nodes).node(rule, "", 1)
