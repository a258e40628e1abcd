"""What generated rule code runs against, and how one generated function is assembled.

:data:`HELPERS` is the fixed namespace every generated function executes in (no builtins);
:class:`Function` collects one function's hoisted ``var``/``val`` lookups and renders its
source. The generator itself is :mod:`engine.conditions.codegen`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from engine.conditions import runtime as rt, semantics as sem
from engine.conditions.interpreter import COMPARISONS, EAGER, evaluate, spread_checked

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
    "_PLAIN": frozenset({str, int, bool, list, type(None)}),
    "_PRIMS": frozenset({str, int, float, bool, type(None)}),
    "_FALLBACK": (OverflowError, ZeroDivisionError),
    "_str": str,
    "_int": int,
    "_float": float,
    "_list": list,
    "_dict": dict,
    "_nf": sem.normalise_number,
    "_cp": rt.cat,
    "_Z": 0.0,
    "_U": 1.0,
    "_SAFE": float(2**53),
    "_NSAFE": -float(2**53),
    "_floor": math.floor,
    "_seq": rt.sequence_or_none,
    "_quantified": rt.quantified,
    "_absent": rt.absent_keys,
    "_interpret": evaluate,
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
    int_default: bool = False  # a lookup whose default, when the key is absent, is an int


@dataclass
class Lookup:
    """One hoisted lookup: ``local = parent[key]``, or ``missing`` when absent."""

    local: str
    parent: str
    key: str
    missing: str  # what the local holds when the key is absent: "None", "_M" or a constant
    get: bool = False  # read with get: absence is expected


_DATA_NAME: Final = re.compile(r"\bd\b")


@dataclass
class Function:
    """One generated ``def``: its name, its hoisted lookups and its temporaries.

    ``const`` names a namespace constant for a value; ``uses_scope`` adds the scope parameter.
    ``roots`` binds first path segments to locals (a ``reduce`` body reads ``current`` and
    ``accumulator`` from the loop's locals instead of a context object); ``kinds`` says what
    is known of a root local's value (``"num"``: always a finite number).
    """

    name: str
    const: Callable[[Any], str]
    uses_scope: bool
    roots: dict[str, str] = field(default_factory=dict)
    temps: int = 0
    depth: int = 0
    lookups: dict[tuple[Any, ...], Lookup] = field(default_factory=dict)
    emitted: int = 0  # how many of ``lookups`` statements have placed already
    kinds: dict[str, str] = field(default_factory=dict)  # what is known of a root's value

    def temp(self) -> str:
        """A fresh temporary name, local to this function."""
        self.temps += 1
        return f"_t{self.temps}"

    def lookup(self, segments: tuple[str, ...], *, absent: str | None = None) -> str:
        """The local holding the value at ``segments`` (hoisted, prefixes shared).

        With ``absent`` (source: ``"_M"``, ``"None"`` or a constant's name), the last segment
        is read with ``get`` (absence is expected there, so no exception is raised) and the
        local holds ``absent`` when the value is not there.
        """
        parent, start = "d", 1
        if segments and segments[0] in self.roots:
            parent, start = self.roots[segments[0]], 2
        for i in range(start, len(segments) + 1):
            last = i == len(segments)
            key: tuple[Any, ...] = (
                (*segments[:i], NOT_CONSTANT, absent)
                if last and absent is not None
                else segments[:i]
            )
            node = self.lookups.get(key)
            if node is None:
                node = Lookup(f"_p{len(self.lookups)}", parent, segments[i - 1], "None")
                if last and absent is not None:
                    node.missing, node.get = absent, True
                self.lookups[key] = node
            parent = node.local
        return parent

    def new_lookup_lines(self) -> list[str]:
        """The lookups registered since the last call, as statements (for lazy placement)."""
        nodes = list(self.lookups.values())[self.emitted :]
        self.emitted = len(self.lookups)
        return self._lookup_lines("", nodes)

    @contextmanager
    def branch(self) -> Iterator[None]:
        """Lookups registered inside are local to a branch: forgotten when it ends."""
        lookups, emitted = dict(self.lookups), self.emitted
        try:
            yield
        finally:
            self.lookups, self.emitted = lookups, emitted

    def _lookup_lines(self, indent: str, nodes: list[Lookup] | None = None) -> list[str]:
        const, lines = self.const, []
        nodes = list(self.lookups.values()) if nodes is None else nodes
        grouped: set[str] = set()  # parents whose get lookups are already placed
        for node in nodes:
            index = rt.index_of(node.key)
            if node.get:  # absence is expected (a default is given): avoid raising
                if node.parent not in grouped:
                    grouped.add(node.parent)
                    siblings = [n for n in nodes if n.get and n.parent == node.parent]
                    lines += self._get_lines(indent, siblings)
            elif index is not None:  # a list is indexed inline (a dict is read by the key)
                lines += [
                    f"{indent}try:",
                    f"{indent}    {node.local} = {node.parent}[{const(index)}] "
                    f"if {node.parent}.__class__ is _list "
                    f"else _ix({node.parent}, {const(node.key)}, {const(index)}, {node.missing})",
                    f"{indent}except _LOOKUP:",
                    f"{indent}    {node.local} = {node.missing}",
                ]
            else:
                lines += [
                    f"{indent}try:",
                    f"{indent}    {node.local} = {node.parent}[{const(node.key)}]",
                    f"{indent}except _LOOKUP:",
                    f"{indent}    {node.local} = {node.missing}",
                ]
        return lines

    def _get_lines(self, indent: str, siblings: list[Lookup]) -> list[str]:
        """Lookups read with ``get`` from one parent: the parent is checked to be a ``dict``
        once for all of them (a get lookup is never itself a parent, so placing the later
        siblings beside the first keeps every parent assigned before it is read)."""
        const, parent = self.const, siblings[0].parent
        reads, others = [], []
        for node in siblings:
            default = "" if node.missing == "None" else f", {node.missing}"
            index = const(rt.index_of(node.key))
            reads.append((node.local, f"{parent}.get({const(node.key)}{default})"))
            others.append(f"_ix({parent}, {const(node.key)}, {index}, {node.missing})")
        if len(siblings) == 1:
            ((local, read),) = reads
            return [f"{indent}{local} = {read} if {parent}.__class__ is _dict else {others[0]}"]
        return [
            f"{indent}if {parent}.__class__ is _dict:",
            *(f"{indent}    {local} = {read}" for local, read in reads),
            f"{indent}else:",
            *(
                f"{indent}    {local} = {other}"
                for (local, _), other in zip(reads, others, strict=True)
            ),
        ]

    def render(self, body: str, fallback: str | None = None) -> str:
        """The ``def`` source: hoisted lookups, then ``return body``.

        With ``fallback``, Python errors from inlined arithmetic (overflow, division by zero)
        return ``fallback`` instead, which re-evaluates the rule with the interpreter.
        """
        params = "d, s=_E" if self.uses_scope else "d"
        lines = [f"def {self.name}({params}):", *self._lookup_lines("    ")]
        if fallback is None:
            lines.append(f"    return {body}")
        else:
            lines += ["    try:", f"        return {body}", "    except _FALLBACK:"]
            lines.append(f"        return {fallback}")
        return "\n".join(lines)

    def render_statements(self, body: list[str], fallback: str | None = None) -> str:
        """The ``def`` source running ``body`` (statements that place their own lookups).

        With ``fallback``, Python errors from inlined arithmetic (overflow, division by zero)
        return ``fallback`` instead, which re-evaluates the rule with the interpreter.
        """
        params = "d, s=_E" if self.uses_scope else "d"
        if fallback is None:
            return "\n".join([f"def {self.name}({params}):", *("    " + line for line in body)])
        return "\n".join(
            [
                f"def {self.name}({params}):",
                "    try:",
                *("        " + line for line in body),
                "    except _FALLBACK:",
                f"        return {fallback}",
            ]
        )

    def render_loop(self, params: str, loop: Loop) -> str:
        """A ``def`` running ``loop.step`` for each element of ``_i`` (lookups hoisted per step).

        When the step reads the whole element context ``d`` and ``loop.context`` is given, the
        context is built first in each step.
        """
        inner = self._lookup_lines("        ") + ["        " + line for line in loop.step]
        if loop.context is not None and _DATA_NAME.search("\n".join(inner)):
            inner.insert(0, f"        d = {loop.context}")
        return "\n".join(
            [
                f"def {self.name}({params}):",
                *("    " + line for line in loop.head),
                f"    for {loop.variable} in _i:",
                *inner,
                *("    " + line for line in loop.tail),
            ]
        )


@dataclass(frozen=True)
class Loop:
    """The statements of a compiled iterator: before, in and after ``for <variable> in _i``."""

    head: list[str]
    step: list[str]
    tail: list[str]
    variable: str = "d"
    context: str | None = None
