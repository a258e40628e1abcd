"""Why a rule was falsy: the sub-conditions responsible, for dry runs.

:func:`explain` evaluates a rule with the interpreter and, when the result is falsy (or
evaluation failed), walks the logical structure (``and``, ``or``, ``!``, ``!!``, ``if``) to the
deepest conditions that decided it: the first falsy child of an ``and``; every child of an
``or`` (all of them failed); the branch an ``if`` took, or its conditions when none held.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from engine.conditions import semantics as sem
from engine.conditions.codegen import static_segments
from engine.conditions.interpreter import COMPARISONS, evaluate
from engine.conditions.validate import is_operation, join_path, validate_rule

_ITERATORS = frozenset({"map", "filter", "reduce", "all", "some", "none"})
_QUANTIFIERS = frozenset({"all", "some", "none"})
_MAX_TEXT = 80
_MAX_ELEMENTS = 3
"""How many failed elements an explanation of ``some`` names."""


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, separators=(", ", ": "))
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


@dataclass(frozen=True)
class Failure:
    """One condition that made a rule falsy (or failed).

    ``path`` locates it in the rule (``and[1].in``), ``operator`` is its operator,
    ``actual`` holds the evaluated values of its data-dependent operands, and ``message`` is
    one line for people, e.g. ``product.inventory_level <= 0 was false (actual: 5)``.
    """

    path: str
    operator: str
    actual: tuple[Any, ...]
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable rendering."""
        return {
            "path": self.path,
            "operator": self.operator,
            "actual": _jsonable(list(self.actual)),
            "message": self.message,
        }


@dataclass(frozen=True)
class Explanation:
    """The outcome of a rule and, when it is falsy, the conditions responsible.

    ``passed`` is the truthiness of ``result``. ``failures`` is empty when the rule passed;
    otherwise it has one entry per responsible condition (several under an ``or``).
    ``error`` is set, and ``result`` is None, when evaluation raised.
    """

    result: Any
    passed: bool
    failures: tuple[Failure, ...] = ()
    error: str | None = None

    @property
    def message(self) -> str:
        """A one-line summary: ``"passed"`` or the failure messages joined by ``"; "``."""
        if self.passed:
            return "passed"
        return "; ".join(f.message for f in self.failures) or "the rule was falsy"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable rendering."""
        return {
            "result": _jsonable(self.result),
            "passed": self.passed,
            "failures": [f.to_dict() for f in self.failures],
            "error": self.error,
            "message": self.message,
        }


@dataclass
class _Outcome:
    value: Any
    failures: list[Failure] = field(default_factory=list)
    error: sem.EvaluationError | None = None


def _render(node: Any) -> str:
    """A short human rendering of a rule node: var paths bare, literals as JSON."""
    if is_operation(node):
        ((name, args),) = node.items()
        if name == "var":
            path = args[0] if isinstance(args, list) and args else args
            if isinstance(path, str | int | float) and not isinstance(path, bool):
                return sem.to_js_string(path) or "data"
            if path is None or path == []:
                return "data"
        if name == "val":
            segments = static_segments(args)
            if segments is not None:
                return ".".join(segments) or "data"
    return _show(node)


class _Explainer:
    def __init__(self, data: Any) -> None:
        self.data = data

    def value(self, node: Any, location: str) -> _Outcome:
        """Evaluate ``node``; when falsy or failing, say why."""
        if not is_operation(node):
            try:
                value = evaluate(node, self.data)
            except sem.EvaluationError as exc:
                failure = Failure(location, "value", (), f"{_render(node)} failed: {exc.message}")
                return _Outcome(None, [failure], exc)
            if sem.truthy(value):
                return _Outcome(value)
            return _Outcome(
                value, [Failure(location, "value", (value,), f"{_show(value)} is falsy")]
            )
        ((name, args),) = node.items()
        path = join_path(location, name)
        if name in ("and", "or") and args:
            return self.connective(name, args, path)
        if name in ("!", "!!"):
            return self.negation(name, args, path)
        if name in ("if", "?:") and args:
            return self.branch(args, path)
        return self.leaf(node, path)

    def leaf(self, node: Any, path: str) -> _Outcome:
        try:
            value = evaluate(node, self.data)
        except sem.EvaluationError as exc:
            return _Outcome(None, [self.failure(node, path, None, exc)], exc)
        if sem.truthy(value):
            return _Outcome(value)
        failure = self.failure(node, path, value, None)
        ((name, args),) = node.items()
        if name in _QUANTIFIERS:
            failure = self.quantified(name, args, path, failure)
        return _Outcome(value, [failure])

    def quantified(self, name: str, args: list[Any], path: str, failure: Failure) -> Failure:
        """``failure`` of ``all``/``some``/``none`` with the elements and sub-conditions that
        decided it: the first element failing ``all``'s condition, the first matching
        ``none``'s, or the first elements for which ``some``'s condition failed."""
        items = evaluate(args[0], self.data)
        if not isinstance(items, list | tuple) or not items:
            return failure
        body, reasons = args[1], []
        for i, item in enumerate(items):
            inner = _Explainer(item).value(body, f"{path}[1]")
            if inner.error is not None or sem.truthy(inner.value) == (name == "none"):
                if name == "none":
                    reasons.append(f"element {i} {_show(item)} matched {_render(body)}")
                else:
                    why = "; ".join(f.message for f in inner.failures) or "falsy"
                    reasons.append(f"element {i} {_show(item)}: {why}")
                if name != "some" or len(reasons) == _MAX_ELEMENTS:
                    break
        message = f"{failure.message}: {', '.join(reasons)}" if reasons else failure.message
        return Failure(failure.path, failure.operator, failure.actual, message)

    def safe(self, node: Any) -> Any:
        """The value of ``node``, or a description of the error it raised (for display)."""
        try:
            return evaluate(node, self.data)
        except sem.EvaluationError as exc:
            return f"<error: {exc.message}>"

    def failure(
        self, node: Any, path: str, value: Any, error: sem.EvaluationError | None
    ) -> Failure:
        """The failure record for an operation that was falsy (``value``) or raised."""
        ((name, args),) = node.items()
        nodes = args if isinstance(args, list) else [args]
        if name in ("var", "val"):
            actual: tuple[Any, ...] = (value,)
            text, shown = _render(node), []
        else:
            operands = nodes[:1] if name in _ITERATORS else nodes
            actual = tuple(self.safe(n) for n in operands)
            shown = [_show(v) for n, v in zip(operands, actual, strict=True) if is_operation(n)]
            if name in COMPARISONS or name == "in":
                text = f" {name} ".join(_render(n) for n in nodes)
            else:
                text = f"{name}({', '.join(_render(n) for n in nodes)})"
        suffix = f" (actual: {', '.join(shown)})" if shown else ""
        if error is not None:
            return Failure(path, name, actual, f"{text} failed: {error.message}{suffix}")
        verb = "was false" if value is False else f"was {_show(value)}"
        return Failure(path, name, actual, f"{text} {verb}{suffix}")

    def connective(self, name: str, args: list[Any], path: str) -> _Outcome:
        failures: list[Failure] = []
        outcome = _Outcome(False)
        for i, arg in enumerate(args):
            outcome = self.value(arg, f"{path}[{i}]")
            if outcome.error is not None:
                return outcome
            if sem.truthy(outcome.value) == (name == "or"):
                return _Outcome(outcome.value, outcome.failures if name == "and" else [])
            failures += outcome.failures
        return _Outcome(outcome.value, [] if name == "and" else failures)

    def negation(self, name: str, args: Any, path: str) -> _Outcome:
        nodes = args if isinstance(args, list) else [args]
        if not nodes:
            return self.leaf({name: args}, path)
        inner = self.value(nodes[0], f"{path}[0]" if isinstance(args, list) else path)
        if inner.error is not None:
            return inner
        if name == "!!":
            return _Outcome(sem.truthy(inner.value), inner.failures)
        if not sem.truthy(inner.value):
            return _Outcome(True)
        message = f"not {_render(nodes[0])} was false (actual: {_show(inner.value)})"
        return _Outcome(False, [Failure(path, "!", (inner.value,), message)])

    def branch(self, args: list[Any], path: str) -> _Outcome:
        conditions: list[Failure] = []
        i = 0
        while i + 1 < len(args):
            test = self.value(args[i], f"{path}[{i}]")
            if test.error is not None:
                return test
            if sem.truthy(test.value):
                chosen = self.value(args[i + 1], f"{path}[{i + 1}]")
                if chosen.error is not None or sem.truthy(chosen.value):
                    return chosen
                if is_operation(args[i + 1]):
                    return chosen
                message = f"{_render(args[i])} held, so the result was {_show(chosen.value)}"
                return _Outcome(chosen.value, [Failure(path, "if", (test.value,), message)])
            conditions += test.failures
            i += 2
        if i < len(args):
            fallback = self.value(args[i], f"{path}[{i}]")
            if fallback.error is not None or sem.truthy(fallback.value):
                return fallback
            if is_operation(args[i]):
                return fallback
            return _Outcome(fallback.value, conditions or fallback.failures)
        return _Outcome(None, conditions)


def explain(rule: Any, data: Any = None) -> Explanation:
    """Evaluate ``rule`` for ``data`` and explain a falsy result or an error.

    Raises :class:`~engine.errors.ConditionError` when the rule is invalid; evaluation errors
    are reported in the explanation (``error`` and a failure at the node that raised).
    """
    validate_rule(rule)
    outcome = _Explainer(data).value(rule, "")
    if outcome.error is not None:
        return Explanation(None, False, tuple(outcome.failures), str(outcome.error))
    passed = sem.truthy(outcome.value)
    return Explanation(outcome.value, passed, () if passed else tuple(outcome.failures))
