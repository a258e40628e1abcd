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

from engine.conditions import runtime as rt, semantics as sem
from engine.conditions.generated import EAGER_HELPERS, NOT_CONSTANT, Expr, Function
from engine.conditions.validate import is_operation

_BINARY: Final = {"+": "+", "-": "-", "*": "*"}
_BINARY_OR_DIVIDE: Final = frozenset({"+", "-", "*", "/"})
_SMALL: Final = 2.0**969
"""A finite number plus or minus a constant smaller than this is finite (it stays below the
largest float by more than half the spacing of floats there, so it cannot round up to
infinity); an int too large for a float raises OverflowError there instead."""


def _is_number(e: Expr) -> bool:
    return e.const is not NOT_CONSTANT and sem.is_number(e.const)


def _float_result(t: str, code: str) -> str:
    """``code`` (a float) normalised inline: kept when finite and not integral, an ``int``
    when integral and exactly representable; NaN and infinities reach ``_nf``, which raises.
    (``t % 1.0`` is in (0, 1] for a finite non-integral float, 0.0 for an integral one and
    NaN for NaN and infinities; ``_Z``, ``_U``, ``_NSAFE`` and ``_SAFE`` are 0.0, 1.0, -2.0**53
    and 2.0**53. ``_floor`` is :func:`math.floor`, which equals ``int`` on an integral float
    and is a cheaper call.)"""
    return f"({t} if _Z < ({t} := {code}) % _U else {_integral(t)})"


def _number_result(t: str, code: str) -> str:
    """``code`` (an int or a float) normalised inline, as :func:`_float_result`."""
    return f"({t} if ({t} := {code}).__class__ is _int or _Z < {t} % _U else {_integral(t)})"


def _finite_result(t: str, code: str) -> str:
    """``code`` (a number) checked to be finite (``t - t`` is NaN for NaN and infinities)."""
    return f"({t} if ({t} := {code}) - {t} == _Z else _nf({t}))"


def finite_number(first: str, later: str, *, int_first: bool = False) -> str:
    """Source testing that a value is a finite ``int`` or ``float`` (not a ``bool``): ``first``
    is its first use (it may bind), ``later`` the name it is read by afterwards. Floats are
    tested first (``x - x`` is NaN for NaN and infinities); an ``int`` is always finite.
    ``int_first`` tests for an ``int`` first (a lookup with an int default)."""
    if int_first:
        float_test = f"{later}.__class__ is _float and {later} - {later} == _Z"
        return f"({first}.__class__ is _int or {float_test})"
    return f"({first}.__class__ is _float and {later} - {later} == _Z or {later}.__class__ is _int)"


def _is_arithmetic(node: Any) -> bool:
    return is_operation(node) and next(iter(node)) in _BINARY_OR_DIVIDE


def _is_merge(node: Any) -> bool:
    """Whether ``node`` is a ``merge`` of one or more operands given as a list."""
    if not is_operation(node) or next(iter(node)) != "merge":
        return False
    args = node["merge"]
    return isinstance(args, list) and len(args) > 0


def _is_constant(node: Any) -> bool:
    return not isinstance(node, dict | list)


def joiner(checks: list[str]) -> str:
    """How to join ``checks`` so that every binding (``:=``) in them is evaluated: ``&`` when
    a check that binds follows one that can fail, else ``and`` (which stops at the first
    failing check; a ``... is not None`` check of an operand that is a number cannot fail)."""
    fallible = False
    for check in checks:
        if fallible and ":=" in check:
            return " & "
        fallible = fallible or not check.endswith(" is not None")
    return " and "


def _integral(t: str) -> str:
    return f"_floor({t}) if _NSAFE <= {t} <= _SAFE else _nf({t})"


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

    def number_operand(self, node: Any, fn: Function) -> Expr:
        """``node``'s expression for a consumer that needs only its numeric value."""
        self.raw_operand = is_operation(node) and next(iter(node)) in _BINARY_OR_DIVIDE
        try:
            return self.expr(node, fn)
        finally:
            self.raw_operand = False

    def _bound(
        self, args: list[Any], fn: Function, raw: tuple[bool, ...] = ()
    ) -> list[tuple[Expr, str, str]]:
        """Each argument's expression with its first-use and later-use source; the operands
        flagged in ``raw`` are generated for their numeric value only (:attr:`raw_operand`)."""
        exprs = [
            self.number_operand(arg, fn) if i < len(raw) and raw[i] else self.expr(arg, fn)
            for i, arg in enumerate(args)
        ]
        return [(e, *self.bind(e, fn)) for e in exprs]

    @staticmethod
    def _checks(operands: list[tuple[Expr, str, str]], test: str) -> list[str]:
        """``test`` for each operand that is not a numeric constant."""
        return [test.format(first) for e, first, _ in operands if not _is_number(e)]

    @staticmethod
    def _either(checks: list[str], fast: str, slow: str, extra: str = "") -> str:
        """``fast if <all checks> [and extra] else slow``; every check is evaluated, in order."""
        condition = joiner(checks).join(f"({check})" for check in checks)
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
        if _is_merge(haystack):
            return self._in_merge(needle, haystack["merge"], fn)
        (n, n1, n2), (h, h1, h2) = self._bound(args, fn)
        checks = [
            f"({h1}.__class__ is _str or {h2}.__class__ is _list)"
            if h.kind != "list"
            else f"{h1} is not None"
        ]
        if not isinstance(n.const, str):
            checks.insert(0, f"{n1}.__class__ is _str")
        fast, slow = f"{n2} in {h2}", f"_contains({n2}, {h2})"
        return Expr(self._either(checks, fast, slow), "bool")

    def _in_merge(self, needle: Any, parts: list[Any], fn: Function) -> Expr:
        """``in`` over ``merge`` of arrays, for a string needle: a search of each array in
        turn (no merged list is built); any operand not an array takes the helpers."""
        (n, n1, n2), *operands = self._bound([needle, *parts], fn)
        checks = [] if isinstance(n.const, str) else [f"{n1}.__class__ is _str"]
        checks += [f"{first}.__class__ is _list" for _, first, _ in operands]
        fast = "(" + " or ".join(f"{n2} in {later}" for _, _, later in operands) + ")"
        merged = f"{EAGER_HELPERS['merge']}({', '.join(later for _, _, later in operands)})"
        return Expr(self._either(checks, fast, f"_contains({n2}, {merged})"), "bool")

    raw_operand = False
    """Set while generating an operand whose consumer needs only its numeric value: an
    arithmetic result there is checked to be finite, not normalised. ``14.0`` and ``14``
    compare alike, and compute alike with a float (an integral float from a normalisable
    result is at most 2**53, so converting the int to a float is exact). With an int they may
    not: ``2.0**53 + 1`` is ``2.0**53`` where ``2**53 + 1`` is exact. So the consumers are
    comparisons and ``+ - * /`` whose other operand is a float constant."""

    def _arithmetic(self, name: str, args: Any, fn: Function) -> Expr:
        raw, self.raw_operand = self.raw_operand, False
        if not isinstance(args, list) or len(args) != 2:  # the helper (one frame less: deep rules)
            return Expr(f"{EAGER_HELPERS[name]}({self.call_args(name, args, fn)})", "num")
        # an operand beside a float constant may stay unnormalised; so may a dividend whose
        # divisor is checked to be a float at run time (else the dividend is normalised)
        raw_dividend = name == "/" and _is_arithmetic(args[0]) and not _is_constant(args[1])
        unnormalised = (args[1].__class__ is float or raw_dividend, args[0].__class__ is float)
        operands = self._bound(args, fn, unnormalised if name != "%" else ())
        if any(e.const is not NOT_CONSTANT and not _is_number(e) for e, _, _ in operands):
            return self._eager(name, args, fn)
        if name == "%":
            return self._remainder(args, operands, fn)
        (_, _, a), (eb, _, b) = operands
        slow = f"{EAGER_HELPERS[name]}({a}, {b})"
        checks = self._numeric_checks(operands)
        floats = any(e.const.__class__ is float for e, _, _ in operands)
        t = fn.temp()
        if name == "/":  # int / int keeps the helper's exact integer division
            extra = [] if floats else [f"({a}.__class__ is _float or {b}.__class__ is _float)"]
            if raw_dividend:  # an integral float dividend is exact only beside a float divisor
                extra, slow = [f"{b}.__class__ is _float"], f"{EAGER_HELPERS[name]}(_nf({a}), {b})"
                if eb.kind != "num":  # its number check (the last) becomes the float check
                    extra, checks[-1] = [], f"{operands[1][1]}.__class__ is _float"
            if eb.kind != "num":  # x / Infinity would be 0 where the helper raises
                extra.append(f"{b} - {b} == _Z")
            fast = (_finite_result if raw else _float_result)(t, f"{a} / {b}")
            return Expr(self._either(checks, fast, slow, " and ".join(extra)), "num")
        # + - *: a non-finite result (from non-finite operands too) is left to _nf, which raises
        result = f"{a} {_BINARY[name]} {b}"
        known = all(e.kind == "num" for e, _, _ in operands)
        if known:  # finite numbers: no slow path
            checks, (x, y) = [], (e.code for e, _, _ in operands)
            result = f"({x}) {_BINARY[name]} ({y})"
        fast = _float_result(t, result) if floats else _number_result(t, result)
        if raw:  # finite ± a constant below 2**969 rounds to at most the largest float
            small = any(_is_number(e) and abs(e.const) < _SMALL for e, _, _ in operands)
            finite = known and name != "*" and small
            fast = f"({result})" if finite else _finite_result(t, result)
        return Expr(self._either(checks, fast, slow), "num")

    def _remainder(self, args: Any, operands: list[tuple[Expr, str, str]], fn: Function) -> Expr:
        """``a % b``: Python's remainder equals JavaScript's for ints ``a >= 0``, ``b > 0``."""
        if any(
            e.const is not NOT_CONSTANT and (e.const.__class__ is not int or e.const < low)
            for (e, _, _), low in zip(operands, (0, 1), strict=True)
        ):
            return self._eager("%", args, fn)
        (_, _, a), (_, _, b) = operands
        checks = self._checks(operands, "{}.__class__ is _int")
        signs = [
            f"{x} {sign} _Z"
            for (e, _, x), sign in zip(operands, (">=", ">"), strict=True)
            if e.const is NOT_CONSTANT
        ]
        slow = f"{EAGER_HELPERS['%']}({a}, {b})"
        return Expr(self._either(checks, f"{a} % {b}", slow, " and ".join(signs)), "num")

    @staticmethod
    def _numeric_checks(operands: list[tuple[Expr, str, str]]) -> list[str]:
        """A check per operand, in order, that it is a number; an operand already known to be
        a finite number is only evaluated there (so evaluation order stays the operands')."""
        checks = []
        for e, first, _ in operands:
            if e.kind != "num":
                checks.append(f"{first}.__class__ in _NUMS")
            elif not e.simple:
                checks.append(f"{first} is not None")
        return checks

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
        checks = [  # NaN and infinities go to the helper (raises)
            finite_number(first, later) if e.kind != "num" else f"{first} is not None"
            for e, first, later in operands
            if e.kind != "num" or not e.simple
        ]
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
        parts = []
        for arg in args:  # each part converted where it stands: cat cannot raise
            e = self.expr(arg, fn)
            if e.const is not NOT_CONSTANT:
                if e.const is not None:
                    parts.append(self.const(rt.cat(e.const)))
            elif e.kind == "str":
                parts.append(e.code)
            else:
                first, later = self.bind(e, fn)
                parts.append(
                    f"({later} if {first}.__class__ is _str or {later}.__class__ is _int "
                    f"else _cp({later}))"
                )
        if not parts:
            return Expr(self.const(""), "str")
        return Expr(_joined(parts), "str")

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

    def missing_test(self, name: str, args: Any, fn: Function) -> str | None:
        """Source for the truthiness of ``missing``/``missing_some`` with literal keys (is any
        key, or are too many keys, absent?) without building the list; None otherwise."""
        keys: Any = args if name == "missing" else args[1] if len(args) == 2 else None
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            return None
        if name == "missing_some":
            if isinstance(args[0], list | dict):
                return None
            try:
                need = sem.to_number(args[0])
            except sem.EvaluationError:
                return None
        # absent, null and "" count as missing: each last key is read with get
        values = [fn.lookup(rt.var_path(key), absent="None") for key in keys]
        empty = self.const("")
        present = [f"({v} is not None and {v} != {empty})" for v in values]
        if name == "missing":  # the list is empty when every key is present
            return f"(not ({' and '.join(present)}))" if present else "False"
        # [] when at least ``need`` are present, else the absent keys (maybe none of them)
        limit = min(need, len(keys))
        if limit <= 0:
            return "False"
        if limit <= 1:
            return f"(not ({' or '.join(present)}))"
        return f"({' + '.join(present)} < {self.const(limit)})"

    def _missing(self, name: str, args: Any, fn: Function) -> Expr:
        keys: Any = args if name == "missing" else args[1] if len(args) == 2 else None
        need = args[0] if name == "missing_some" else None
        simple_keys = isinstance(keys, list) and all(isinstance(k, str) and k for k in keys)
        if not simple_keys or isinstance(need, list | dict):
            return Expr(f"_{name}(d, {self.call_args(name, args, fn)})", "list")
        # the last segment is read with get: absent keys are expected here (no exception)
        values = [fn.lookup(rt.var_path(key), absent="_M") for key in keys]
        empty = self.const("")
        present = [f"({v} is not None and {v} is not _M and {v} != {empty})" for v in values]
        found = "".join(f"None if {v} is _M else {v}, " for v in values)
        absent = f"_absent({self.const(keys)}, ({found}))"
        if name == "missing":
            return Expr(f"([] if {' and '.join(present) or 'True'} else {absent})", "list")
        try:
            count = sem.to_number(need)
        except sem.EvaluationError:
            return Expr(f"_{name}(d, {self.call_args(name, args, fn)})", "list")
        total = " + ".join(present) or "0"
        return Expr(f"([] if {total} >= {self.const(count)} else {absent})", "list")


def _joined(parts: list[str]) -> str:
    """One f-string of ``parts`` (str or int values: an int formats as ``str`` does).

    An f-string builds the result once instead of one string per ``+``. A part holding a
    quote, a backslash or a line break cannot sit in an f-string before Python 3.12; those
    are joined with ``+``, each part through ``str``.
    """
    if any(ch in part for part in parts for ch in "\"\\\n'"):
        return f"({' + '.join(f'_str({part})' for part in parts)})"
    return 'f"' + "".join(f"{{({part})}}" for part in parts) + '"'
