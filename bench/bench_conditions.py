"""Benchmark: compiled JsonLogic conditions against panzi-json-logic and hand-written Python.

For every rule of the corpus (``bench/conditions_corpus.py``: orders with lines, customers,
products, stock and backorders) it runs panzi-json-logic, the hand-written function and Sous's
compiled rule on the same data, in several interleaved rounds, keeps the best round of each,
and prints evaluations per second side by side with the two ratios the compiler is held to:
at least 20x panzi-json-logic and at least 40 % of the hand-written function. Before timing it
checks that the three agree with the interpreter on the corpus data.

Run with ``.venv/bin/python -m bench.bench_conditions [--iterations N] [--repeats R]
[--only NAME]``. The exit status is 1 when any rule misses a target. The defaults are many short
rounds (25 of 5000 evaluations, best kept): on a loaded machine a short round is more likely to
run undisturbed than a long one, so the best of many short rounds is the steadier figure.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench.conditions_corpus import CORPUS, DATA, Case
from engine.conditions import compile_rule, evaluate

TARGET_VS_PANZI = 20.0
TARGET_VS_HAND = 0.40
PANZI_SHARE = 20
"""panzi-json-logic runs this many times fewer iterations (it is that much slower)."""


def _timed(function: Callable[[Any], Any], data: Any, iterations: int) -> float:
    loop = range(iterations)
    start = time.perf_counter()
    for _ in loop:
        function(data)
    return time.perf_counter() - start


def best_rates(
    functions: dict[str, tuple[Callable[[Any], Any], int]], data: Any, repeats: int
) -> dict[str, float]:
    """Evaluations per second of each ``function(data)``, best of ``repeats`` timed loops.

    ``functions`` maps a label to ``(function, iterations)``. Each round times every function
    once, so a change in machine load affects all of them alike.
    """
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeats):
        for label, (function, iterations) in functions.items():
            best[label] = min(best[label], _timed(function, data, iterations) / iterations)
    return {label: 1 / seconds for label, seconds in best.items()}


def _panzi(rule: Any) -> Callable[[Any], Any]:
    from json_logic import jsonLogic  # type: ignore[import-untyped]  # panzi-json-logic (dev)

    def run(data: Any) -> Any:
        return jsonLogic(rule, data)

    return run


def _checked(case: Case) -> dict[str, Callable[[Any], Any]]:
    """The three evaluators of ``case``, after checking they agree with the interpreter."""
    functions = {"panzi": _panzi(case.rule), "hand": case.hand, "sous": compile_rule(case.rule)}
    expected = evaluate(case.rule, DATA)
    for label, function in functions.items():
        got = function(DATA)
        if got != expected or type(got) is not type(expected):
            raise AssertionError(f"{case.name}: {label} gave {got!r}, expected {expected!r}")
    return functions


def measure(case: Case, iterations: int, repeats: int) -> tuple[float, float, float]:
    """Evaluations per second of panzi-json-logic, the hand-written function and Sous."""
    functions = _checked(case)
    panzi_iterations = max(iterations // PANZI_SHARE, 200)
    rates = best_rates(
        {
            "panzi": (functions["panzi"], panzi_iterations),
            "hand": (functions["hand"], iterations),
            "sous": (functions["sous"], iterations),
        },
        DATA,
        repeats,
    )
    return rates["panzi"], rates["hand"], rates["sous"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--only", help="time only the rule with this name")
    args = parser.parse_args(argv)

    cases = [case for case in CORPUS if args.only in (None, case.name)]
    print(
        f"{'rule':<26}{'panzi ev/s':>12}{'hand ev/s':>12}{'sous ev/s':>12}"
        f"{'vs panzi':>10}{'vs hand':>9}  targets"
    )
    missed = []
    for case in cases:
        panzi, hand, ours = measure(case, args.iterations, args.repeats)
        vs_panzi, vs_hand = ours / panzi, ours / hand
        met = vs_panzi >= TARGET_VS_PANZI and vs_hand >= TARGET_VS_HAND
        if not met:
            missed.append(case.name)
        print(
            f"{case.name:<26}{panzi:>12,.0f}{hand:>12,.0f}{ours:>12,.0f}"
            f"{vs_panzi:>9.1f}x{vs_hand:>9.0%}  {'met' if met else 'NOT met'}"
        )
    print(
        f"{len(cases) - len(missed)}/{len(cases)} rules meet both targets "
        f"(>= {TARGET_VS_PANZI:.0f}x panzi-json-logic, >= {TARGET_VS_HAND:.0%} of hand-written)"
        + (f"; missed: {', '.join(missed)}" if missed else "")
    )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
