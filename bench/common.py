"""Shared pieces of the benchmarks: the recipe they run, a throwaway engine on a SQLite file,
and percentiles."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

from engine import Engine, EngineSettings
from engine.context import Services
from engine.store.db import Database
from sous.container import build_registry

RECIPE: dict[str, Any] = {
    "id": "stock-message",
    "name": "Build a stock-out message",
    "trigger": {"type": "custom.stock"},
    # A benchmark floods one recipe on purpose: lift the flood limit and the default of ten
    # runs at once.
    "max_runs": 1000,
    "flood": False,
    "conditions": [
        {"<=": [{"var": "product.inventory_level"}, 0]},
        {"==": [{"var": "product.inventory_tracking"}, "product"]},
    ],
    "actions": [
        {"id": "msg", "use": "core.set", "with": {"text": "{{ product.name }} is sold out"}}
    ],
}
"""Two conditions and one action that builds a message (webhook → IF → Set in n8n's terms)."""


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> str:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    return f"p50 {p50:.2f} ms  p99 {p99:.2f} ms  mean {statistics.fmean(values):.2f} ms"


def temp_engine(workers: int = 32) -> tuple[Engine, Path]:
    folder = Path(tempfile.mkdtemp(prefix="sous-bench-"))
    db = Database(f"sqlite:///{folder / 'bench.db'}")
    db.create_all()
    engine = Engine(
        db, build_registry(), services=Services(), settings=EngineSettings(workers=workers)
    )
    return engine, folder
