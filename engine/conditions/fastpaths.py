"""Inline fast paths for data operators in generated rule code.

Each method returns source that checks its operands' types and, when they are the plain JSON
types for which Python's own operator gives exactly the JavaScript-semantics answer, uses that
operator; otherwise it calls the shared helper the interpreter uses. Guards evaluate every
operand once and in order (``&`` on booleans does not short-circuit), so errors surface as in
the interpreter. Python errors an inline operator can still meet (overflow, division by zero)
are caught by the rule's entry function, which then re-evaluates the rule with the interpreter.
"""

from __future__ import annotations

from typing import Any, Final

from engine.conditions import runtime as rt
from engine.conditions import semantics as sem
from engine.conditions.generated import EAGER_HELPERS, NOT_CONSTANT, Expr, Function

_BINARY: Final = {"+": "+", "-": "-", "*": "*"}


def _is_number(e: Expr) -> bool:
    return e.const is not NOT_CONSTANT and sem.is_number(e.const)


class FastPaths:
    """Mixed into the code generator: ``in``, arithmetic, ``max``/``min``, ``merge``, ``cat``,
    ``substr``, ``missing`` and ``missing_some``."""

    def expr(self, node: Any, fn: Function) -> Expr:
        raise NotImplementedError

    def const(self, value: Any) -> str:
        raise NotImplementedError

    def bind(self, e: Expr, fn: Function) -> tuple[str, str]:
        raise NotImplementedError

    def _eager(self, name: str, args: Any, fn: Function) -> Expr:
        raise NotImplementedError

    def call_args(self, name: str, args: Any, fn: Function) -> str:
        raise NotImplementedError

    def _bound(self, args: list[Any], fn: Function) -> list[tuple[Expr, str, str]]:
        """Each argument's expression with its first-use and later-use source."""
        exprs = [self.expr(arg, fn) for arg in args]
        return [(e, *self.bind(e, fn)) for e in exprs]

    @staticmethod
    def _checks(operands: list[tuple[Expr, str, str]], test: str) -> list[str]:
        """``test`` for each operand that is not a numeric constant."""
        return [test.format(first) for e, first, _ in operands if not _is_number(e)]

    @staticmethod
    def _either(checks: list[str], fast: str, slow: str, extra: str = "") -> str:
        """``fast if <all checks> [and extra] else slow``; every check is evaluated, in order."""
        condition = " & ".join(f"({check})" for check in checks)
        if extra:
            condition = f"{condition} and {extra}" if condition else extra
        return f"({fast} if {condition} else {slow})" if condition else fast

    def _in(self, name: str, args: Any, fn: Function) -> Expr:
        if not isinstance(args, list):
            return self._eager(name, args, fn)
        needle, haystack = args
        if isinstance(haystack, list) and all(isinstance(item, str) for item in haystack):
            _, first, later = self._bound([needle], fn)[0]
            members, items = self.const(frozenset(haystack)), self.const(haystack)
            code = f"({later} in {members} if {first}.__class__ is _str else "
            return Expr(code + f"_contains({later}, {items}))", "bool")
        (n, n1, n2), (_, h1, h2) = self._bound(args, fn)
        checks = [f"{h1}.__class__ in _STRLIST"]
        if not isinstance(n.const, str):
            checks.insert(0, f"{n1}.__class__ is _str")
        fast, slow = f"{n2} in {h2}", f"_contains({n2}, {h2})"
        return Expr(self._either(checks, fast, slow), "bool")

    def _arithmetic(self, name: str, args: Any, fn: Function) -> Expr:
        if not isinstance(args, list) or len(args) != 2:  # the helper (one frame less: deep rules)
            return Expr(f"{EAGER_HELPERS[name]}({self.call_args(name, args, fn)})", "num")
        operands = self._bound(args, fn)
        integers = name == "%"  # JavaScript's remainder equals Python's for ints a >= 0, b > 0
        if any(
            e.const is not NOT_CONSTANT
            and (not _is_number(e) or (integers and e.const.__class__ is not int))
            for e, _, _ in operands
        ):
            return self._eager(name, args, fn)
        (_, _, a), (_, _, b) = operands
        slow = f"{EAGER_HELPERS[name]}({a}, {b})"
        if integers:
            checks = self._checks(operands, "{}.__class__ is _int")
            return Expr(self._either(checks, f"{a} % {b}", slow, f"{a} >= 0 and {b} > 0"), "num")
        checks = self._checks(operands, "{}.__class__ in _NUMS")
        if name == "/":  # int / int keeps the helper's exact integer division
            extra = f"({a}.__class__ is _float or {b}.__class__ is _float)"
            return Expr(self._either(checks, f"_nf({a} / {b})", slow, extra), "num")
        t = fn.temp()
        fast = f"({t} if ({t} := {a} {_BINARY[name]} {b}).__class__ is _int else _nf({t}))"
        return Expr(self._either(checks, fast, slow), "num")

    def _extremum(self, name: str, args: Any, fn: Function) -> Expr:
        if not isinstance(args, list) or not args:
            return self._eager(name, args, fn)
        operands = self._bound(args, fn)
        if any(e.const is not NOT_CONSTANT and not _is_number(e) for e, _, _ in operands):
            return self._eager(name, args, fn)
        op = ">=" if name == "max" else "<="  # ties keep the first, as Python's max/min
        best = operands[0][2]
        for _, _, later in operands[1:]:
            t = fn.temp()
            best = f"({t} if ({t} := {best}) {op} {later} else {later})"
        slow = f"{EAGER_HELPERS[name]}({', '.join(later for _, _, later in operands)})"
        checks = self._checks(operands, "{}.__class__ in _NUMS")
        return Expr(self._either(checks, best, slow), "num")

    def _merge(self, name: str, args: Any, fn: Function) -> Expr:
        if not isinstance(args, list) or not args:
            return self._eager(name, args, fn)
        operands = self._bound(args, fn)
        checks, parts = [], []
        for e, first, later in operands:
            if e.kind in ("list", "any"):
                checks.append(f"{first}.__class__ is _list")
                parts.append(f"*{later}")
            else:  # a number, string, boolean or null: one element
                if not e.simple:
                    checks.append(f"{first}.__class__ is not _list")
                parts.append(later)
        slow = f"{EAGER_HELPERS[name]}({', '.join(later for _, _, later in operands)})"
        return Expr(self._either(checks, f"[{', '.join(parts)}]", slow), "list")

    def _cat(self, name: str, args: Any, fn: Function) -> Expr:
        if not isinstance(args, list) or len(args) < 2:
            return self._eager(name, args, fn)
        operands = self._bound(args, fn)
        checks, parts = [], []
        for e, first, later in operands:
            if e.const is NOT_CONSTANT:
                checks.append(f"{first}.__class__ is _str")
                parts.append(later)
            elif e.const is not None:
                parts.append(self.const(rt.cat(e.const)))
        slow = f"{EAGER_HELPERS[name]}({', '.join(later for _, _, later in operands)})"
        return Expr(self._either(checks, " + ".join(parts) or self.const(""), slow), "str")

    def _substr(self, name: str, args: Any, fn: Function) -> Expr:
        bounds: list[Any] = args[1:] if isinstance(args, list) and len(args) in (2, 3) else [None]
        if not all(value.__class__ is int for value in bounds) or (
            len(bounds) > 1 and bounds[1] < 0
        ):
            return self._eager(name, args, fn)
        (_, first, later), *_ = self._bound(args[:1], fn)
        start = bounds[0]
        piece = f"{later}[{self.const(start)}:]"
        if len(bounds) > 1:
            piece = f"{later}[{self.const(start)}:{self.const(start + bounds[1])}]"
            if start < 0:
                piece = f"{later}[{self.const(start)}:][:{self.const(bounds[1])}]"
        slow = f"{EAGER_HELPERS[name]}({later}, {', '.join(self.const(b) for b in bounds)})"
        return Expr(self._either([f"{first}.__class__ is _str"], piece, slow), "str")

    def _missing(self, name: str, args: Any, fn: Function) -> Expr:
        keys: Any = args if name == "missing" else args[1] if len(args) == 2 else None
        need = args[0] if name == "missing_some" else None
        simple_keys = isinstance(keys, list) and all(isinstance(k, str) and k for k in keys)
        if not simple_keys or isinstance(need, list | dict):
            return Expr(f"_{name}(d, {self.call_args(name, args, fn)})", "list")
        values = [fn.lookup(rt.var_path(key)) for key in keys]
        empty = self.const("")
        present = [f"({v} is not None and {v} != {empty})" for v in values]
        absent = f"_absent({self.const(keys)}, ({''.join(v + ', ' for v in values)}))"
        if name == "missing":
            return Expr(f"([] if {' and '.join(present) or 'True'} else {absent})", "list")
        try:
            count = sem.to_number(need)
        except sem.EvaluationError:
            return Expr(f"_{name}(d, {self.call_args(name, args, fn)})", "list")
        total = " + ".join(present) or "0"
        return Expr(f"([] if {total} >= {self.const(count)} else {absent})", "list")
