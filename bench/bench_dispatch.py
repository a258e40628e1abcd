"""Dispatch cost must not grow with recipes that don't subscribe to the event.

Times ``Dispatcher.decide`` per event with 10 and with 10,000 enabled recipes spread over
1,000 stores (and a handful of event types), for events that do match one store's recipes.
Target: ratio ≤ 1.2.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from engine.match.dispatcher import CompiledRecipe, Dispatcher, RecipeIndex
from engine.model.events import Event
from engine.model.recipe import Recipe
from sous.container import build_registry

TYPES = ["custom.stock", "custom.order", "custom.customer", "custom.shipment", "custom.refund"]


def build(n: int, stores: int = 1000) -> Dispatcher:
    registry = build_registry()
    index = RecipeIndex()
    for i in range(n):
        # Exactly one recipe subscribes to the measured (store, type); the rest are elsewhere.
        type_ = TYPES[0] if i == 0 else TYPES[1 + i % (len(TYPES) - 1)]
        recipe = Recipe.model_validate(
            {
                "id": f"r{i}",
                "name": f"recipe {i}",
                "store": "store5" if i == 0 else f"store{i % stores}",
                "trigger": {"type": type_},
                "conditions": [{"<=": [{"var": "product.inventory_level"}, 0]}],
                "actions": [{"use": "core.log", "with": {"message": "x"}}],
            }
        )
        index.add(CompiledRecipe.build(f"uid{i}", "default", 1, recipe, registry))
    return Dispatcher(index)


def time_per_event(dispatcher: Dispatcher, events: int = 200_000) -> float:
    now = datetime.now(UTC)
    event = Event(
        id="evt",
        type="custom.stock",
        payload={"product": {"id": 1, "inventory_level": 0}},
        workspace="default",
        store="store5",
        source="bench",
        dedup_key="x",
        occurred_at=now,
        received_at=now,
    )
    for _ in range(events // 10):
        dispatcher.decide(event)  # warm up
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(events):
            dispatcher.decide(event)
        best = min(best, (time.perf_counter() - start) / events)
    return best


def main() -> None:
    small = time_per_event(build(10))
    large = time_per_event(build(10_000))
    ratio = large / small
    print("dispatch cost per event (1,000 stores)")
    print(f"  10 recipes      {small * 1e6:8.2f} µs/event")
    print(f"  10,000 recipes  {large * 1e6:8.2f} µs/event")
    print(
        f"  ratio           {ratio:8.2f}   (target ≤ 1.2: {'met' if ratio <= 1.2 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
