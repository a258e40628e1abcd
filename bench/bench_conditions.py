"""Benchmark: compiled JsonLogic conditions against panzi-json-logic and hand-written Python.

Runs each evaluator on the same rule and data for a fixed number of iterations, in several
interleaved rounds, keeps the best round of each, and prints evaluations per second and the two
ratios the compiler is held to: at least 20x panzi-json-logic and at least 40 % of the
hand-written function.

Run with ``.venv/bin/python -m bench.bench_conditions [--iterations N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from engine.conditions import compile_rule

RULE: dict[str, Any] = {
    "and": [
        {"<=": [{"var": "product.inventory_level"}, 0]},
        {"==": [{"var": "product.inventory_tracking"}, "product"]},
        {"in": ["sale", {"var": "product.tags"}]},
    ]
}
DATA: dict[str, Any] = {
    "product": {"inventory_level": 0, "inventory_tracking": "product", "tags": ["sale", "summer"]}
}
TARGET_VS_PANZI = 20.0
TARGET_VS_HAND = 0.40


def hand_written(data: Any) -> Any:
    """The rule written directly in Python (no JsonLogic semantics): the upper bound."""
    product = data["product"]
    return (
        product["inventory_level"] <= 0
        and product["inventory_tracking"] == "product"
        and "sale" in product["tags"]
    )


def _timed(function: Callable[[Any], Any], iterations: int) -> float:
    data = DATA
    loop = range(iterations)
    start = time.perf_counter()
    for _ in loop:
        function(data)
    return time.perf_counter() - start


def best_rates(
    functions: dict[str, tuple[Callable[[Any], Any], int]], repeats: int
) -> dict[str, float]:
    """Evaluations per second of each ``function(DATA)``, best of ``repeats`` timed loops.

    ``functions`` maps a label to ``(function, iterations)``. Each round times every function
    once, so a change in machine load affects all of them alike.
    """
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeats):
        for label, (function, iterations) in functions.items():
            best[label] = min(best[label], _timed(function, iterations) / iterations)
    return {label: 1 / seconds for label, seconds in best.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)

    from json_logic import jsonLogic  # type: ignore[import-untyped]  # panzi-json-logic (dev)

    compiled = compile_rule(RULE)
    expected = hand_written(DATA)
    assert compiled(DATA) is expected
    assert jsonLogic(RULE, DATA) is expected

    rates = best_rates(
        {
            "panzi": (lambda data: jsonLogic(RULE, data), max(args.iterations // 20, 1_000)),
            "compiled": (compiled, args.iterations),
            "hand": (hand_written, args.iterations),
        },
        args.repeats,
    )
    panzi, ours, hand = rates["panzi"], rates["compiled"], rates["hand"]

    vs_panzi, vs_hand = ours / panzi, ours / hand
    print(f"panzi-json-logic  {panzi:>14,.0f} ev/s")
    print(f"compile_rule      {ours:>14,.0f} ev/s")
    print(f"hand-written      {hand:>14,.0f} ev/s")
    print(
        f"compiled vs panzi: {vs_panzi:6.1f}x  (target >= {TARGET_VS_PANZI:.0f}x: "
        f"{'met' if vs_panzi >= TARGET_VS_PANZI else 'NOT met'})"
    )
    print(
        f"compiled vs hand:  {vs_hand:6.1%}  (target >= {TARGET_VS_HAND:.0%}: "
        f"{'met' if vs_hand >= TARGET_VS_HAND else 'NOT met'})"
    )
    return 0 if vs_panzi >= TARGET_VS_PANZI and vs_hand >= TARGET_VS_HAND else 1


if __name__ == "__main__":
    raise SystemExit(main())
