"""Backtest through the engine: events ingested for real, then a saved recipe and a draft run
against them — counts, per-condition refusals, subjects, the time range, and no side effects."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from engine import Engine, NewEvent, Recipe, backtest
from engine.clock import ManualClock
from engine.model.events import CausedBy
from engine.store.models import EventRow, JobRow, MatchRow, RunRow, StepRow

DRAFT: dict[str, Any] = {
    "id": "sold-out",
    "name": "Sold out",
    "trigger": {"type": "test.stock"},
    "conditions": [
        {"==": [{"var": "product.inventory_tracking"}, "product"]},
        {"<=": [{"var": "product.inventory_level"}, 0]},
    ],
    "actions": [{"use": "core.log", "with": {"message": "{{ product.name }} sold out"}}],
}


def stock(pid: int, level: int, tracking: str = "product") -> dict[str, Any]:
    return {
        "product": {
            "id": pid,
            "name": f"Product {pid}",
            "inventory_level": level,
            "inventory_tracking": tracking,
        }
    }


async def seed(engine: Engine, clock: ManualClock) -> None:
    """Two days of events: day one 3 sold out (products 1, 1, 2), one untracked, one in stock;
    day two one sold out (product 3) in store s2, and an order event."""
    for payload in (stock(1, 0), stock(1, -1), stock(2, 0), stock(4, 0, "none"), stock(5, 9)):
        await engine.ingest(NewEvent(type="test.stock", payload=payload, store="s1"))
        clock.advance(60)
    clock.advance(86_400)
    await engine.ingest(NewEvent(type="test.stock", payload=stock(3, 0), store="s2"))
    await engine.ingest(NewEvent(type="custom.order", payload={"order": {"id": 9}}, store="s1"))


def counts(engine: Engine) -> dict[str, int]:
    tables = {"event": EventRow, "match": MatchRow, "run": RunRow, "step": StepRow, "job": JobRow}
    with engine.db.session() as s:
        return {
            name: int(s.exec(select(func.count()).select_from(t)).one()[0])  # type: ignore[call-overload]
            for name, t in tables.items()
        }


async def test_a_draft_reports_fires_refusals_and_subjects_and_writes_nothing(
    engine: Engine, clock: ManualClock
) -> None:
    start = clock.now()
    await seed(engine, clock)
    before = counts(engine)
    seen: list[tuple[int, int]] = []
    report = backtest(
        engine.db,
        engine.registry,
        Recipe.model_validate(DRAFT),
        "default",
        start,
        clock.now() + timedelta(seconds=1),
        progress=lambda n, fired: seen.append((n, fired)),
    )
    assert counts(engine) == before  # no run, no match, no job, no event
    body = report.to_dict()
    assert (body["events"], body["fired"]) == (6, 4)
    assert body["rejected"] == {"conditions": 2}
    first, second = body["conditions"]
    assert (first["rejected"], second["rejected"]) == (1, 1)
    assert "product.inventory_tracking" in first["example"]["message"]
    assert "actual: 9" in second["example"]["message"]
    assert list(body["per_day"].values()) == [3, 1]
    products = body["subjects"]["product"]
    assert products["distinct"] == 3
    assert products["top"][0] == {"id": "1", "name": "Product 1", "fires": 2}
    assert [f["subject"]["id"] for f in body["first"]] == ["1", "1", "2", "3"]
    assert body["complete"] is True
    assert seen[-1] == (6, 4)


async def test_the_range_the_stores_and_the_limit_bound_what_is_read(
    engine: Engine, clock: ManualClock
) -> None:
    start = clock.now()
    await seed(engine, clock)
    recipe = Recipe.model_validate(DRAFT)
    day_one = backtest(engine.db, engine.registry, recipe, "default", start, start + timedelta(1))
    assert (day_one.events, day_one.fired) == (5, 3)
    in_s2 = Recipe.model_validate({**DRAFT, "store": "s2"})
    only = backtest(engine.db, engine.registry, in_s2, "default", start, clock.now() + timedelta(1))
    assert (only.events, only.fired) == (1, 1)
    other = backtest(engine.db, engine.registry, recipe, "acme", start, clock.now() + timedelta(1))
    assert other.events == 0  # another workspace's events are not read
    cut = backtest(
        engine.db, engine.registry, recipe, "default", start, clock.now() + timedelta(1), limit=2
    )
    assert (cut.events, cut.complete) == (2, False)
    assert cut.stopped_at is not None


async def test_a_saved_recipe_skips_its_own_writes_and_events_meant_for_another(
    engine: Engine, clock: ManualClock
) -> None:
    stored = engine.recipes.create("default", {**DRAFT, "enabled": False})
    start = clock.now()
    caused = CausedBy(run_id="run_x", recipe_uid=stored.uid, depth=1)
    await engine.ingest(NewEvent(type="test.stock", payload=stock(1, 0), caused_by=caused))
    await engine.ingest(NewEvent(type="test.stock", payload=stock(2, 0), target_recipe="rcp_other"))
    await engine.ingest(NewEvent(type="test.stock", payload=stock(3, 0)))
    report = backtest(
        engine.db,
        engine.registry,
        stored.recipe,
        "default",
        start,
        clock.now() + timedelta(seconds=1),
        uid=stored.uid,
    )
    assert (report.events, report.fired, report.rejected) == (2, 1, {"loop": 1})
