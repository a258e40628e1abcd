"""Rule functions as statements, so each ``var`` is read only on the branch that needs it.

A function whose rule is an ``and``/``or`` or an ``if`` chain is generated as a sequence of
``if ...: return ...`` statements instead of one expression, and each lookup is placed just
before the statement that first reads it: when ``and`` stops at its first operand, the
lookups of the others never run. Lookups of an ``if`` branch are local to that branch.
"""

from __future__ import annotations

from typing import Any, Final

from engine.conditions.generated import Expr, Function
from engine.conditions.validate import is_operation

_MAX_NESTING: Final = 6
"""``if`` branches nest statements this deep at most; deeper rules stay expressions."""


class Statements:
    """Mixed into the code generator: the body of a function as lazy statements."""

    def expr(self, node: Any, fn: Function) -> Expr:
        raise NotImplementedError

    def test(self, node: Any, fn: Function) -> str:
        raise NotImplementedError

    def truth(self, e: Expr, fn: Function) -> str:
        raise NotImplementedError

    def statements(self, node: Any, fn: Function, *, test: bool, nesting: int = 0) -> list[str]:
        """Statements returning ``node``'s value (its truthiness when ``test``) for ``d``."""
        if is_operation(node) and nesting < _MAX_NESTING:
            ((name, args),) = node.items()
            if name in ("and", "or") and isinstance(args, list) and len(args) > 1:
                return self._sequence(name, args, fn, test, nesting)
            if name in ("if", "?:") and isinstance(args, list) and len(args) > 1:
                return self._branches(args, fn, test, nesting)
        code = self.test(node, fn) if test else self.expr(node, fn).code
        return [*fn.new_lookup_lines(), f"return {code}"]

    def _sequence(
        self, name: str, args: list[Any], fn: Function, test: bool, nesting: int
    ) -> list[str]:
        lines: list[str] = []
        stop = "not " if name == "and" else ""
        for arg in args[:-1]:
            if test:
                check, result = self.test(arg, fn), "False" if name == "and" else "True"
            else:
                e = self.expr(arg, fn)
                if e.kind == "bool":
                    check, result = e.code, "False" if name == "and" else "True"
                else:
                    t = fn.temp()
                    lines += fn.new_lookup_lines()
                    lines.append(f"{t} = {e.code}")
                    check, result = self.truth(Expr(t, e.kind, simple=True), fn), t
            lines += fn.new_lookup_lines()
            lines += [f"if {stop}({check}):", f"    return {result}"]
        return lines + self.statements(args[-1], fn, test=test, nesting=nesting)

    def _branches(self, args: list[Any], fn: Function, test: bool, nesting: int) -> list[str]:
        lines: list[str] = []
        for i in range(0, len(args) - 1, 2):
            check = self.test(args[i], fn)
            lines += fn.new_lookup_lines()
            lines.append(f"if {check}:")
            with fn.branch():
                body = self.statements(args[i + 1], fn, test=test, nesting=nesting + 1)
            lines += ["    " + line for line in body]
        if len(args) % 2:
            return lines + self.statements(args[-1], fn, test=test, nesting=nesting)
        return [*lines, "return False" if test else "return None"]
