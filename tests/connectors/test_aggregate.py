"""core.aggregate as a step: counts a list from an earlier step and adds up a number in its items,
through the engine (the list is rendered natively, not as text)."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from engine import Engine, NewEvent
from engine.store.models import StepRow


async def test_a_list_is_counted_and_its_numbers_added_up(engine: Engine) -> None:
    recipe: dict[str, Any] = {
        "id": "sum-it",
        "name": "Sum it",
        "trigger": {"type": "custom.orders"},
        "actions": [
            {"id": "all", "use": "core.aggregate", "with": {"items": "{{ orders }}"}},
            {
                "id": "totals",
                "use": "core.aggregate",
                "with": {"items": "{{ orders }}", "field": "total.inc_tax"},
            },
            {
                "id": "none",
                "use": "core.aggregate",
                "with": {"items": "{{ orders }}", "field": "nowhere"},
            },
        ],
    }
    engine.refresh(engine.recipes.create("default", recipe))
    orders = [
        {"id": 1, "total": {"inc_tax": 10.5}},
        {"id": 2, "total": {"inc_tax": "4.5"}},
        {"id": 3, "total": {"inc_tax": None}},
        {"id": 4, "total": {"inc_tax": 25}},
    ]
    result = await engine.ingest(NewEvent(type="custom.orders", payload={"orders": orders}))
    await engine.drain()
    with engine.db.session() as s:
        rows = s.exec(
            select(StepRow).where(StepRow.run_id == result.runs[0]).order_by(col(StepRow.index))
        ).all()
    outputs = [r.output for r in rows]
    assert outputs[0] == {
        "count": 4, "sum": 0.0, "min": None, "max": None, "average": None, "missing": 0,
    }  # fmt: skip
    assert outputs[1] == {
        "count": 4, "sum": 40.0, "min": 4.5, "max": 25.0, "average": 13.333333, "missing": 1,
    }  # fmt: skip
    assert outputs[2] is not None and (outputs[2]["count"], outputs[2]["missing"]) == (4, 4)
