"""Backtest throughput: a recipe over 100,000 stored events.

Seeds a SQLite file with 100,000 events of the recipe's trigger type in bulk (spread over 30
days, 10 stores and 5,000 products, about a quarter of them sold-out tracked products), then
times :func:`engine.backtest` over the whole range: paged reads from the read-only connection,
each event rebuilt and put through the dispatcher's decision with the conditions compiled once.
The figure is events read and decided per second. Target: ≥ 20,000 events/s.

    python -m bench.bench_backtest [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine import Database, EventRow, Recipe, backtest, new_id
from sous.container import build_registry

TARGET = 20_000
START = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 30

RECIPE: dict[str, Any] = {
    "id": "sold-out-alert",
    "name": "Tell staff when a tracked product sells out",
    "trigger": {"type": "custom.stock"},
    "conditions": [
        {"==": [{"var": "product.inventory_tracking"}, "product"]},
        {"<=": [{"var": "product.inventory_level"}, 0]},
    ],
    "actions": [{"use": "core.log", "with": {"message": "{{ product.name }} sold out"}}],
}


def rows(count: int, workspace: str = "default") -> list[dict[str, Any]]:
    rng = random.Random(7)
    span = DAYS * 86_400
    out = []
    for n in range(count):
        received = START + timedelta(seconds=span * n / count)
        product = rng.randrange(5_000)
        payload = {
            "product": {
                "id": product,
                "name": f"Product {product}",
                "sku": f"SKU-{product:05d}",
                "inventory_level": rng.choice((0, 0, 1, 3, 12, 40)),
                "inventory_tracking": "product" if rng.random() < 0.8 else "none",
                "price": round(rng.uniform(5, 200), 2),
            }
        }
        event_id = new_id("evt")
        out.append(
            {
                "id": event_id,
                "workspace_id": workspace,
                "store": f"store{n % 10}",
                "type": "custom.stock",
                "payload": payload,
                "source": "api",
                "dedup_key": event_id,
                "occurred_at": received,
                "received_at": received,
                "caused_by": None,
                "target_recipe": None,
                "dispatched": True,
            }
        )
    return out


def seed(db: Database, count: int) -> None:
    table = EventRow.__table__  # type: ignore[attr-defined]
    batch = rows(count)
    for i in range(0, len(batch), 10_000):
        part = batch[i : i + 10_000]
        db.run_sync(lambda tx, part=part: tx.insert(table, part))  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sous-bench-"))
    db = Database(f"sqlite:///{folder / 'bench.db'}")
    db.create_all()
    seed(db, args.events)
    registry = build_registry()
    recipe = Recipe.model_validate(RECIPE)
    until = START + timedelta(days=DAYS)
    rates = []
    report = None
    for _ in range(args.rounds):
        report = backtest(db, registry, recipe, "default", START, until)
        rates.append(report.events / report.seconds)
    assert report is not None
    db.dispose()
    best, median = max(rates), statistics.median(rates)
    print(f"backtest over {report.events:,} stored events")
    print(f"  would fire {report.fired:,} times; rejected {report.rejected}")
    print(f"  median {median:,.0f} events/s, best {best:,.0f} events/s over {args.rounds} rounds")
    verdict = "met" if median >= TARGET else "NOT met"
    print(f"  target ≥ {TARGET:,} events/s: {verdict}")


if __name__ == "__main__":
    main()
