"""What generated rule code runs against, and how one generated function is assembled.

:data:`HELPERS` is the fixed namespace every generated function executes in (no builtins);
:class:`Function` collects one function's hoisted ``var``/``val`` lookups and renders its
source. The generator itself is :mod:`engine.conditions.codegen`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from engine.conditions import runtime as rt
from engine.conditions import semantics as sem
from engine.conditions.interpreter import COMPARISONS, EAGER, spread_checked

NOT_CONSTANT: Final = object()
"""Marks an expression whose value is not known when generating code."""

EAGER_HELPERS: Final = {name: f"_op{i}" for i, name in enumerate(sorted(EAGER))}
COMPARE_HELPERS: Final = {name: f"_cmp{i}" for i, name in enumerate(sorted(COMPARISONS))}
PY_OPERATOR: Final = {
    "==": "==",
    "===": "==",
    "!=": "!=",
    "!==": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
}

HELPERS: Final[dict[str, Any]] = {
    "__builtins__": {},
    "_T": sem.truthy,
    "_M": rt.MISSING,
    "_E": (),
    "_LOOKUP": rt.LOOKUP_ERRORS,
    "_NUMS": frozenset({int, float}),
    "_str": str,
    "_list": list,
    "_dict": dict,
    "_ix": rt.child,
    "_var": rt.var,
    "_val": rt.val,
    "_exists": rt.exists,
    "_missing": rt.missing,
    "_missing_some": rt.missing_some,
    "_spread": spread_checked,
    "_fresh": rt.fresh,
    "_contains": rt.contains,
    "_attempt": rt.attempt,
    "_it_map": rt.iterate_map,
    "_it_filter": rt.iterate_filter,
    "_it_reduce": rt.iterate_reduce,
    "_it_all": rt.iterate_all,
    "_it_some": rt.iterate_some,
    "_it_none": rt.iterate_none,
    **{helper: EAGER[name] for name, helper in EAGER_HELPERS.items()},
    **{helper: COMPARISONS[name] for name, helper in COMPARE_HELPERS.items()},
}
"""The fixed part of every generated function's namespace."""


@dataclass(frozen=True)
class Expr:
    """Generated source for one value, with what is known about it statically."""

    code: str
    kind: str = "any"  # bool | num | str | list | null | any
    simple: bool = False  # a bare name: free to evaluate more than once
    const: Any = NOT_CONSTANT


@dataclass
class Lookup:
    """One hoisted lookup: ``local = parent[key]``, or ``missing`` when absent."""

    local: str
    parent: str
    key: str
    missing: str  # what the local holds when the key is absent: "None" or "_M"


@dataclass
class Function:
    """One generated ``def``: its name, its hoisted lookups and its temporaries.

    ``const`` names a namespace constant for a value; ``uses_scope`` adds the scope parameter.
    """

    name: str
    const: Callable[[Any], str]
    uses_scope: bool
    temps: int = 0
    depth: int = 0
    lookups: dict[tuple[Any, ...], Lookup] = field(default_factory=dict)

    def temp(self) -> str:
        """A fresh temporary name, local to this function."""
        self.temps += 1
        return f"_t{self.temps}"

    def lookup(self, segments: tuple[str, ...], *, sentinel: bool = False) -> str:
        """The local holding the value at ``segments`` (hoisted, prefixes shared)."""
        parent = "d"
        for i in range(1, len(segments) + 1):
            last = i == len(segments)
            key: tuple[Any, ...] = (
                (*segments[:i], NOT_CONSTANT) if last and sentinel else segments[:i]
            )
            node = self.lookups.get(key)
            if node is None:
                node = Lookup(f"_p{len(self.lookups)}", parent, segments[i - 1], "None")
                if last and sentinel:
                    node.missing = "_M"
                self.lookups[key] = node
            parent = node.local
        return parent

    def render(self, body: str) -> str:
        """The ``def`` source: hoisted lookups, then ``return body``."""
        const = self.const
        params = "d, s=_E" if self.uses_scope else "d"
        lines = [f"def {self.name}({params}):"]
        for node in self.lookups.values():
            index = rt.index_of(node.key)
            if index is not None:
                lines.append(
                    f"    {node.local} = _ix({node.parent}, {const(node.key)}, "
                    f"{const(index)}, {node.missing})"
                )
            else:
                lines += [
                    "    try:",
                    f"        {node.local} = {node.parent}[{const(node.key)}]",
                    "    except _LOOKUP:",
                    f"        {node.local} = {node.missing}",
                ]
        lines.append(f"    return {body}")
        return "\n".join(lines)
