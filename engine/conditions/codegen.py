"""Python source generation for JsonLogic rules.

A rule becomes one Python function (plus one per iterator body and ``try`` alternative),
compiled once. Safety rests on one invariant: **no value from a rule ever becomes source
text.** Every literal, path segment and operator name used at run time is stored in the
function's namespace as a constant named ``_k<n>``; the source contains only identifiers this
module makes up (``_k3``, ``_p0``, ``_t1``, ``_f2``, helper names), keywords and punctuation.
The namespace has no builtins.

Speed comes from three things:

* ``var``/``val`` lookups with constant paths are hoisted to the top of their function as
  ``try: _p1 = _p0[_k2] except _LOOKUP: _p1 = None`` blocks, sharing common prefixes, so a
  lookup costs a few subscripts. (Lookups cannot fail or have effects, so running them before
  a short-circuit decides they were not needed is safe.)
* Comparisons against a constant check the other operand's type and use Python's operator
  when that is exact (``x <= 0`` for an ``int``/``float`` ``x``; ``x == "a"`` for a ``str``),
  falling back to the generic JavaScript-semantics helper otherwise.
* ``and``/``or``/``if``/``!`` over boolean-valued operands use Python's own operators.

Everything else calls the helpers in :mod:`engine.conditions.runtime` and
:mod:`engine.conditions.semantics`, which the interpreter uses too.
"""

from __future__ import annotations

from typing import Any, Final

from engine.conditions import runtime as rt, semantics as sem
from engine.conditions.fastpaths import FastPaths, finite_number, joiner
from engine.conditions.generated import (
    COMPARE_HELPERS,
    EAGER_HELPERS,
    HELPERS,
    NOT_CONSTANT,
    PY_OPERATOR,
    Expr,
    Function,
    Loop,
)
from engine.conditions.interpreter import COMPARISONS
from engine.conditions.operators import OPERATORS
from engine.conditions.statements import Statements
from engine.conditions.validate import is_operation

__all__ = ["HELPERS", "generate", "needs_scope", "static_segments"]

_SPLIT_DEPTH: Final = 16
"""Operations nested deeper than this inside one generated function move to a function of
their own, keeping every expression far below the Python parser's nesting limits."""
_ARITHMETIC: Final = frozenset({"+", "-", "*", "/", "%", "max", "min"})
_STRING_RESULT: Final = frozenset({"cat", "substr"})
_QUANTIFIERS: Final = frozenset({"all", "some", "none"})
_ORDERING: Final = frozenset({"<", "<=", ">", ">="})
_EXACT: Final = 2**53
"""Ints up to this size are exactly floats (a float copy compares alike)."""
_AS_SEQUENCE: Final = ("if _i.__class__ is not _list:", "    _i = _seq(_i)", "    if _i is None:")
"""The start of a compiled iterator over a value that may not be a list (map/filter/reduce)."""


def static_segments(args: Any) -> tuple[str, ...] | None:
    """The path of a ``val``/``exists`` whose arguments are literal keys; None if computed."""
    if isinstance(args, dict):
        return None
    if not isinstance(args, list):
        return () if args is None else (sem.to_js_string(args),)
    if any(isinstance(arg, list | dict) for arg in args):
        return None
    return tuple(sem.to_js_string(arg) for arg in args)


def needs_scope(node: Any) -> bool:
    """Whether a rule can climb scopes (``val``/``exists`` with ``[n]`` or computed paths)."""
    if isinstance(node, list):
        return any(needs_scope(item) for item in node)
    if not is_operation(node):
        return False
    ((name, args),) = node.items()
    if name == "preserve":
        return False
    if name in ("val", "exists") and static_segments(args) is None:
        return True
    return needs_scope(args)


class _Generator(FastPaths, Statements):
    def __init__(self, rule: Any) -> None:
        self.uses_scope = needs_scope(rule)
        self.scope_arg = "s" if self.uses_scope else "None"
        self.scope_tuple = "s" if self.uses_scope else "_E"
        self.constants: dict[str, Any] = {}
        self._constant_names: dict[tuple[type, str], str] = {}
        self.definitions: list[str] = []
        self._functions = 0

    # ------------------------------------------------------------------ plumbing

    def const(self, value: Any) -> str:
        """The name of a namespace constant holding ``value`` (scalars are shared)."""
        key = None if isinstance(value, list | dict) else (type(value), repr(value))
        if key is not None and key in self._constant_names:
            return self._constant_names[key]
        name = f"_k{len(self.constants)}"
        self.constants[name] = value
        if key is not None:
            self._constant_names[key] = name
        return name

    def new_function(self, **roots: str) -> Function:
        """A new, empty generated function (its source is added by the caller)."""
        fn = Function(f"_f{self._functions}", self.const, self.uses_scope, roots)
        self._functions += 1
        return fn

    def function(self, node: Any, *, test: bool = False, entry: bool = False) -> str:
        """Generate a function evaluating ``node`` against its argument; return its name.

        The ``entry`` function (the rule itself) re-evaluates the rule with the interpreter
        when inlined arithmetic meets a Python error, so errors stay the interpreter's.
        """
        fn = self.new_function()
        body = self.statements(node, fn, test=test)
        fallback = f"_interpret({self.const(node)}, d)" if entry else None
        self.definitions.append(fn.render_statements(body, fallback))
        return fn.name

    @staticmethod
    def bind(e: Expr, fn: Function) -> tuple[str, str]:
        """Source for the first use of ``e`` and for later uses (a temporary unless simple)."""
        if e.simple:
            return e.code, e.code
        t = fn.temp()
        return f"({t} := {e.code})", t

    def call_args(self, name: str, args: Any, fn: Function) -> str:
        """Source for an operator's argument list (shorthand and chaining applied)."""
        if isinstance(args, list):
            return ", ".join(self.expr(arg, fn).code for arg in args)
        if OPERATORS[name].chains and is_operation(args):
            return f"*_spread({self.expr(args, fn).code}, {self.const(name)})"
        return self.expr(args, fn).code

    # ------------------------------------------------------------------ expressions

    def call(self, node: Any, *, test: bool = False) -> str:
        """Source calling a new function that evaluates ``node`` (a nested rule split off)."""
        name = self.function(node, test=test)
        return f"{name}(d, s)" if self.uses_scope else f"{name}(d)"

    def expr(self, node: Any, fn: Function) -> Expr:
        """Source for the value of ``node``."""
        if not isinstance(node, dict | list) or not node:
            return self._expr(node, fn)
        if fn.depth >= _SPLIT_DEPTH:
            return Expr(self.call(node))
        fn.depth += 1
        try:
            return self._expr(node, fn)
        finally:
            fn.depth -= 1

    def _expr(self, node: Any, fn: Function) -> Expr:
        if isinstance(node, dict):
            if not node:
                return Expr("_dict()")
            ((name, args),) = node.items()
            return getattr(self, _METHODS.get(name, "_eager"))(name, args, fn)  # type: ignore[no-any-return]
        if isinstance(node, list):
            return Expr("[" + ", ".join(self.expr(item, fn).code for item in node) + "]", "list")
        kind = "null" if node is None else "bool" if isinstance(node, bool) else "any"
        if sem.is_number(node):
            kind = "num"
        elif isinstance(node, str):
            kind = "str"
        return Expr(self.const(node), kind, simple=True, const=node)

    def test(self, node: Any, fn: Function) -> str:
        """Source for a Python bool equal to the JavaScript truthiness of ``node``."""
        if not is_operation(node) or next(iter(node)) not in ("and", "or", "!", "!!"):
            return self._test_value(node, fn)
        if fn.depth >= _SPLIT_DEPTH:
            return self.call(node, test=True)
        fn.depth += 1
        try:
            ((name, args),) = node.items()
            if name in ("and", "or"):
                if not args:
                    return "False"
                return "(" + f" {name} ".join(self.test(arg, fn) for arg in args) + ")"
            nodes = args if isinstance(args, list) else [args]
            inner = self.test(nodes[0], fn) if nodes else "False"
            return f"(not {inner})" if name == "!" else inner
        finally:
            fn.depth -= 1

    def _test_value(self, node: Any, fn: Function) -> str:
        if is_operation(node) and next(iter(node)) in ("missing", "missing_some"):
            ((name, args),) = node.items()
            test = self.missing_test(name, args, fn)
            if test is not None:
                return test
        return self.truth(self.expr(node, fn), fn)

    def truth(self, e: Expr, fn: Function) -> str:
        """Source for a Python bool equal to the JavaScript truthiness of ``e``."""
        if e.const is not NOT_CONSTANT:
            return "True" if sem.truthy(e.const) else "False"
        if e.kind == "bool":
            return e.code
        if e.kind in ("num", "str", "list"):
            return f"(not not {e.code})"
        first, later = self.bind(e, fn)
        guarded = f"((not not {later}) if {later}.__class__ in _PLAIN else _T({later}))"
        return f"({first} is True or {guarded})"

    def _eager(self, name: str, args: Any, fn: Function) -> Expr:
        kind = "num" if name in _ARITHMETIC else "str" if name in _STRING_RESULT else "any"
        if name == "merge":
            kind = "list"
        return Expr(f"{EAGER_HELPERS[name]}({self.call_args(name, args, fn)})", kind)

    def _var(self, name: str, args: Any, fn: Function) -> Expr:
        nodes = args if isinstance(args, list) else [args]
        path = nodes[0] if nodes else None
        default = nodes[1] if len(nodes) > 1 else None
        if isinstance(path, list | dict):
            t = fn.temp()
            fallback = self.expr(default, fn).code if default is not None else "None"
            lookup = f"_var(d, {self.expr(path, fn).code})"
            return Expr(f"({t} if ({t} := {lookup}) is not _M else {fallback})")
        segments = rt.var_path(path)
        if not segments:
            return Expr("d", simple=True)
        if default is None:
            local = fn.lookup(segments)
            return Expr(local, fn.kinds.get(local, "any"), simple=True)
        if not isinstance(default, list | dict):  # a constant default: read with get
            local = fn.lookup(segments, absent=self.const(default))
            return Expr(local, simple=True, int_default=default.__class__ is int)
        local = fn.lookup(segments, absent="_M")
        return Expr(f"({local} if {local} is not _M else {self.expr(default, fn).code})")

    def _val(self, name: str, args: Any, fn: Function) -> Expr:
        segments = static_segments(args)
        if segments is None:
            return Expr(f"_val(d, {self.scope_tuple}, [{self.call_args(name, args, fn)}])")
        return Expr(fn.lookup(segments), simple=True) if segments else Expr("d", simple=True)

    def _exists(self, name: str, args: Any, fn: Function) -> Expr:
        call = f"_exists(d, {self.scope_tuple}, [{self.call_args(name, args, fn)}])"
        return Expr(call, "bool")

    def _if(self, name: str, args: Any, fn: Function) -> Expr:
        if not args:
            return Expr("None", "null")
        pairs = [(args[i], args[i + 1]) for i in range(0, len(args) - 1, 2)]
        branches = [self.expr(then, fn) for _, then in pairs]
        tests = [self.test(condition, fn) for condition, _ in pairs]
        last = self.expr(args[-1], fn) if len(args) % 2 else Expr("None", "null")
        code = " ".join(f"{b.code} if {t} else" for b, t in zip(branches, tests, strict=True))
        kinds = {b.kind for b in (*branches, last)}
        return Expr(
            f"({code} {last.code})" if pairs else last.code,
            kinds.pop() if len(kinds) == 1 else "any",
        )

    def _and_or(self, name: str, args: Any, fn: Function) -> Expr:
        if not args:
            return Expr("False", "bool")
        exprs = [self.expr(arg, fn) for arg in args]
        if len(exprs) == 1:
            return exprs[0]
        if all(e.kind == "bool" for e in exprs):
            return Expr("(" + f" {name} ".join(e.code for e in exprs) + ")", "bool")
        t = fn.temp()
        tests = [
            f"({t} := {e.code})" if e.kind == "bool" else f"_T({t} := {e.code})" for e in exprs[:-1]
        ]
        negate = "not " if name == "and" else ""
        return Expr(f"({t} if {negate}({f' {name} '.join(tests)}) else {exprs[-1].code})")

    def _coalesce(self, name: str, args: Any, fn: Function) -> Expr:
        exprs = [self.expr(arg, fn) for arg in (args if isinstance(args, list) else [args])]
        if len(exprs) <= 1:
            return exprs[0] if exprs else Expr("None", "null")
        t = fn.temp()
        tests = " or ".join(f"({t} := {e.code}) is not None" for e in exprs[:-1])
        return Expr(f"({t} if ({tests}) else {exprs[-1].code})")

    def _not(self, name: str, args: Any, fn: Function) -> Expr:
        return Expr(self.test({name: args}, fn), "bool")

    def _compare(self, name: str, args: Any, fn: Function) -> Expr:
        exprs = [self.number_operand(arg, fn) for arg in args]
        if len(exprs) == 2 and (exprs[0].const is NOT_CONSTANT) != (exprs[1].const is NOT_CONSTANT):
            left_const = exprs[0].const is not NOT_CONSTANT
            k, x = exprs if left_const else exprs[::-1]
            fast = self._guarded(name, k, x, left_const, fn)
            if fast is not None:
                return Expr(fast, "bool")
        if name in _ORDERING and len(exprs) == 3 and self._chainable(exprs):
            return self._between(name, exprs, fn)
        operands: list[tuple[Expr, Expr]] = []  # (first use, later uses)
        for e in exprs:
            first, later = self.bind(e, fn)
            operands.append(
                (Expr(first, e.kind, e.simple, e.const, e.int_default), Expr(later, e.kind, True))
            )
        pairs = [
            self._pair(name, operands[i] if i == 0 else (operands[i][1],) * 2, operands[i + 1], fn)
            for i in range(len(operands) - 1)
        ]
        return Expr(pairs[0] if len(pairs) == 1 else "(" + " and ".join(pairs) + ")", "bool")

    @staticmethod
    def _chainable(exprs: list[Expr]) -> bool:
        """Whether a three-operand ``<``/``<=`` can be one guarded chained comparison: its
        constants are numbers and its last operand is a constant or a name (evaluating it
        before the first comparison decides cannot raise, as a lookup cannot)."""
        if any(e.const is not NOT_CONSTANT and not sem.is_number(e.const) for e in exprs):
            return False
        return exprs[2].simple or exprs[2].const is not NOT_CONSTANT

    def _between(self, name: str, exprs: list[Expr], fn: Function) -> Expr:
        """``{"<": [a, b, c]}`` as Python's chained ``a < b < c`` behind one guard: every
        operand not known to be a finite number is checked to be an ``int``/``float`` and,
        all at once, finite (``x - x`` is NaN for NaN and infinities)."""
        op, helper = PY_OPERATOR[name], COMPARE_HELPERS[name]
        bound = [
            (e.code, e.code) if e.const is not NOT_CONSTANT else self.bind(e, fn) for e in exprs
        ]
        a, b, c = (later for _, later in bound)
        fast, slow = f"{a} {op} {b} {op} {c}", f"({helper}({a}, {b}) and {helper}({b}, {c}))"
        guards, unknown = [], []
        for e, (first, later) in zip(exprs, bound, strict=True):
            if e.kind != "num":
                guards.append(finite_number(first, later))
                unknown.append((first, later))
            elif not e.simple:
                guards.append(f"{first} is not None")
        if not unknown:
            return Expr(
                f"({fast})" if not guards else f"({fast} if {' and '.join(guards)} else {slow})",
                "bool",
            )
        if (
            len(guards) == 1
            and exprs[0].const is not NOT_CONSTANT
            and exprs[2].const is not NOT_CONSTANT
        ):
            # between finite bounds: a true chain proves b finite; only a false one checks it
            # (a float is compared with float copies of int bounds: faster, and exactly alike)
            first, x = unknown[0]
            low, high = (self._float_copy(exprs[i]) for i in (0, 2))
            true_or_checked = f"({low} {op} {x} {op} {high} or ({x} - {x} != _Z and {slow}))"
            return Expr(
                f"({true_or_checked} if {first}.__class__ is _float "
                f"else {fast} if {x}.__class__ is _int else {slow})",
                "bool",
            )
        return Expr(f"({fast} if {joiner(guards).join(guards)} else {slow})", "bool")

    def _pair(
        self, name: str, left: tuple[Expr, Expr], right: tuple[Expr, Expr], fn: Function
    ) -> str:
        """One comparison of two operands, each given as (first use, later uses)."""
        helper = COMPARE_HELPERS[name]
        (l1, l2), (r1, r2) = left, right
        left_const, right_const = l1.const is not NOT_CONSTANT, r1.const is not NOT_CONSTANT
        if left_const != right_const:
            k, x = (l1, r1) if left_const else (r1, l1)
            fast = self._guarded(name, k, x, left_const, fn)
            if fast is not None:
                return fast
        if left_const or right_const:
            return f"{helper}({l1.code}, {r1.code})"
        op = PY_OPERATOR[name]
        if l1.kind == r1.kind and l1.kind in ("num", "str"):  # exact in Python
            return f"({l1.code} {op} {r1.code})"
        if name in _ORDERING:
            guards = [  # in order: a known number is only evaluated (bound) there
                finite_number(x.code, y.code, int_first=x.int_default)
                if x.kind != "num"
                else f"({x.code} is not None)"
                for x, y in ((l1, l2), (r1, r2))
                if x.kind != "num" or not x.simple
            ]
            guard = joiner(guards).join(guards)
        else:
            same = f"({l1.code}.__class__ is {r1.code}.__class__)"
            guard = f"{same} & ({l2.code}.__class__ in _PRIMS)"
        fast = f"{l2.code} {op} {r2.code}"
        return f"({fast} if {guard} else {helper}({l2.code}, {r2.code}))"

    def _guarded(self, name: str, k: Expr, x: Expr, k_on_left: bool, fn: Function) -> str | None:
        """A comparison with a constant that skips coercion when the types allow it."""
        value = k.const
        negated = "not " if name in ("!=", "!==") else ""
        if value is None and name in ("==", "===", "!=", "!=="):
            return f"({x.code} is {negated}None)"
        if isinstance(value, bool):
            return f"({x.code} is {negated}{k.code})" if name in ("===", "!==") else None
        if sem.is_number(value):
            return self._number_constant(name, k, x, k_on_left, fn)
        if not isinstance(value, str):
            return None
        op, helper = PY_OPERATOR[name], COMPARE_HELPERS[name]
        if x.kind == "str":  # a string already: Python's operator is exact
            lhs, rhs = (k.code, x.code) if k_on_left else (x.code, k.code)
            return f"({lhs} {op} {rhs})"
        first, later = self.bind(x, fn)
        lhs, rhs = (k.code, later) if k_on_left else (later, k.code)
        return f"({lhs} {op} {rhs} if {first}.__class__ is _str else {helper}({lhs}, {rhs}))"

    def _float_copy(self, k: Expr) -> str:
        """A constant equal to number constant ``k`` as a float, when one is exactly equal."""
        if k.const.__class__ is int and -_EXACT <= k.const <= _EXACT:
            return self.const(float(k.const))
        return k.code

    def _number_constant(self, name: str, k: Expr, x: Expr, k_on_left: bool, fn: Function) -> str:
        """A comparison of ``x`` with a number constant: a float ``x`` is compared with a float
        copy of the constant (Python compares two floats faster than a float and an int, and
        exactly alike), an ``int`` with the constant itself; NaN and infinities reach the
        helper in an ordering (it raises), anything else always does."""
        op, helper = PY_OPERATOR[name], COMPARE_HELPERS[name]

        def compare(constant: str, other: str) -> str:
            return f"{constant} {op} {other}" if k_on_left else f"{other} {op} {constant}"

        if x.kind == "num":  # a finite number already: Python's operator is exact
            return f"({compare(k.code, x.code)})"
        first, later = self.bind(x, fn)
        twin = self._float_copy(k)
        finite = f" and {later} - {later} == _Z" if name in _ORDERING else ""
        slow = f"{helper}({k.code}, {later})" if k_on_left else f"{helper}({later}, {k.code})"
        return (
            f"({compare(twin, later)} if {first}.__class__ is _float{finite} "
            f"else {compare(k.code, later)} if {later}.__class__ is _int else {slow})"
        )

    def _iterate(self, name: str, args: Any, fn: Function) -> Expr:
        if name == "map" and not self.uses_scope and _plain_filter(args[0]) and _lookup(args[1]):
            # map over filter with a lookup as map body: one loop (a lookup cannot raise, so
            # no error can come out in another order)
            inner = args[0]["filter"]
            items = self.expr(inner[0], fn).code
            return Expr(f"{self._loop('filter', inner[1], then=args[1])}({items})", "list")
        items = self.expr(args[0], fn).code
        kind = "list" if name in ("map", "filter") else "bool" if name != "reduce" else "any"
        if self.uses_scope:  # bodies climbing scopes need the scope tuple: runtime iterators
            body = self.function(args[1], test=name in _QUANTIFIERS or name == "filter")
            if name == "reduce":
                initial = self.expr(args[2], fn).code if len(args) > 2 else "None"
                return Expr(f"_it_reduce({items}, {body}, {initial}, d, {self.scope_arg})")
            return Expr(f"_it_{name}({items}, {body}, d, {self.scope_arg})", kind)
        if name == "reduce":
            start = self.expr(args[2], fn) if len(args) > 2 else Expr("None", "null")
            loop, kind = self._reduce_loop(args[1], numeric=start.kind == "num")
            return Expr(f"{loop}({items}, {start.code})", kind)
        return Expr(f"{self._loop(name, args[1])}({items})", kind)

    def _in(self, name: str, args: Any, fn: Function) -> Expr:
        if (
            isinstance(args, list)
            and len(args) == 2
            and isinstance(args[0], str)
            and not self.uses_scope
            and is_operation(args[1])
            and next(iter(args[1])) == "map"
            and isinstance(args[1]["map"], list)
            and len(args[1]["map"]) == 2
            and _lookup(args[1]["map"][1])
        ):
            items, body = args[1]["map"]
            return Expr(f"{self._search(args[0], body)}({self.expr(items, fn).code})", "bool")
        return super()._in(name, args, fn)

    def _search(self, needle: str, body: Any) -> str:
        """A function telling whether a string equals ``body`` (a lookup) of some element of
        its argument: ``in`` over ``map`` without building the mapped list. Python's list
        membership compares each item with ``==``; a lookup cannot raise, so stopping at the
        first match changes nothing else."""
        fn = self.new_function()
        head = [*_AS_SEQUENCE, "        return False"]
        step = [f"if {self.expr(body, fn).code} == {self.const(needle)}:", "    return True"]
        self.definitions.append(fn.render_loop("_i", Loop(head, step, ["return False"])))
        return fn.name

    def _loop(self, name: str, body: Any, then: Any = None) -> str:
        """A function running ``name`` over its argument with ``body`` inlined in a loop
        (a ``filter`` given ``then`` collects ``then``'s value for each element it keeps)."""
        fn = self.new_function()
        if name in _QUANTIFIERS:
            head = [
                "if _i.__class__ is not _list:",
                f"    _i = _quantified({self.const(name)}, _i)",
            ]
        else:
            head = [*_AS_SEQUENCE, "        return []", "_o = []"]
        if name == "map":
            step, tail = [f"_o.append({self.expr(body, fn).code})"], ["return _o"]
        else:
            test = self.test(body, fn)
            kept = "d" if then is None else self.expr(then, fn).code
            step, tail = {
                "filter": ([f"if {test}:", f"    _o.append({kept})"], ["return _o"]),
                "some": ([f"if {test}:", "    return True"], ["return False"]),
                "none": ([f"if {test}:", "    return False"], ["return True"]),
                "all": ([f"if not ({test}):", "    return False"], ["return True"]),
            }[name]
            if name == "all":
                head += ["if not _i:", "    return False"]
        self.definitions.append(fn.render_loop("_i", Loop(head, step, tail)))
        return fn.name

    def _reduce_loop(self, body: Any, *, numeric: bool) -> tuple[str, str]:
        """A function folding its argument through ``body``, with ``current`` and
        ``accumulator`` held in locals (the context object is built only if read whole), and
        the kind of its result.

        When the initial value is a finite number (``numeric``) the body is first generated
        knowing the accumulator is one too; that holds if the body's value is always a finite
        number (by induction over the steps), else the body is generated again without it.
        """
        mark = len(self.definitions), self._functions
        fn = self.new_function(current="_c", accumulator="_a")
        if numeric:
            fn.kinds["_a"] = "num"
            e = self.expr(body, fn)
            if e.kind != "num":
                del self.definitions[mark[0] :]
                self._functions = mark[1]
                return self._reduce_loop(body, numeric=False)
        else:
            e = self.expr(body, fn)
        step = [f"_a = {e.code}"]
        context = f"{{{self.const('current')}: _c, {self.const('accumulator')}: _a}}"
        loop = Loop([*_AS_SEQUENCE, "        return _a"], step, ["return _a"], "_c", context)
        self.definitions.append(fn.render_loop("_i, _a", loop))
        return fn.name, "num" if numeric else "any"

    def _try(self, name: str, args: Any, fn: Function) -> Expr:
        bodies = [self.function(node) for node in (args if isinstance(args, list) else [args])]
        return Expr(f"_attempt(({', '.join(bodies)},), d, {self.scope_arg})")

    def _preserve(self, name: str, args: Any, fn: Function) -> Expr:
        if isinstance(args, list | dict):
            return Expr(f"_fresh({self.const(args)})", "list" if isinstance(args, list) else "any")
        return self.expr(args, fn)


def _plain_filter(node: Any) -> bool:
    """Whether ``node`` is a ``filter`` with an array and a body."""
    if not is_operation(node) or next(iter(node)) != "filter":
        return False
    args = node["filter"]
    return isinstance(args, list) and len(args) == 2


def _lookup(node: Any) -> bool:
    """Whether ``node`` is a ``var`` with a literal path and no default (it cannot raise)."""
    if not is_operation(node) or next(iter(node)) != "var":
        return False
    args = node["var"]
    path = args[0] if isinstance(args, list) and len(args) == 1 else args
    return not isinstance(path, list | dict)


_METHODS: Final = {
    "var": "_var",
    "val": "_val",
    "exists": "_exists",
    "missing": "_missing",
    "missing_some": "_missing",
    "if": "_if",
    "?:": "_if",
    "and": "_and_or",
    "or": "_and_or",
    "??": "_coalesce",
    "!": "_not",
    "!!": "_not",
    "in": "_in",
    **dict.fromkeys(("+", "-", "*", "/", "%"), "_arithmetic"),
    "max": "_extremum",
    "min": "_extremum",
    "merge": "_merge",
    "cat": "_cat",
    "substr": "_substr",
    "try": "_try",
    "preserve": "_preserve",
    **dict.fromkeys(COMPARISONS, "_compare"),
    **dict.fromkeys(("map", "filter", "reduce", "all", "some", "none"), "_iterate"),
}


def generate(rule: Any) -> tuple[str, str, dict[str, Any]]:
    """Source, entry-point name and constants for a validated ``rule``.

    The source defines ``def <entry>(d)`` returning the rule's value for data ``d``;
    it must be executed in ``{**HELPERS, **constants}``.
    """
    generator = _Generator(rule)
    entry = generator.function(rule, entry=True)
    return "\n\n\n".join(generator.definitions) + "\n", entry, generator.constants
