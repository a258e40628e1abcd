"""Through the front door: load YAML, ingest an event, read the run and its trace."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from engine import Engine, EngineSettings
from engine.authoring.loader import load_file
from engine.clock import ManualClock
from engine.context import Services
from engine.model.events import CausedBy, NewEvent
from engine.registry import Registry
from engine.store.db import Database
from engine.store.models import EventRow, MatchRow, RunRow, StepRow
from tests.fakes import Recorder

RECIPE = """\
id: sold-out-alert
name: Tell staff when a tracked product sells out
trigger:
  type: test.stock
conditions:
  - {"<=": [{"var": "product.inventory_level"}, 0]}
  - {"==": [{"var": "product.inventory_tracking"}, "product"]}
actions:
  - id: note
    use: test.record
    with:
      message: "{{ product.name }} sold out"
      count: "{{ product.id }}"
  - id: second
    use: test.record
    with:
      message: "after {{ steps.note.echoed }}"
"""


def load(engine: Engine, tmp_path: Path, text: str = RECIPE) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    result = load_file(path, engine.registry)
    assert result.errors == []
    stored = engine.recipes.create("default", result.recipes[0][1].document(), source=str(path))
    engine.refresh(stored)
    return stored.uid


def product(level: int, tracking: str = "product") -> dict[str, Any]:
    return {
        "product": {
            "id": 77,
            "name": "Cat Eye Sunglasses",
            "inventory_level": level,
            "inventory_tracking": tracking,
        }
    }


async def test_event_fires_recipe_and_trace_is_recorded(
    engine: Engine, recorder: Recorder, tmp_path: Path
) -> None:
    uid = load(engine, tmp_path)
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(0), store="s1"))
    assert len(result.runs) == 1
    await engine.drain()
    assert [c[1]["message"] for c in recorder.calls] == [
        "Cat Eye Sunglasses sold out",
        "after Cat Eye Sunglasses sold out",
    ]
    assert recorder.calls[0][1]["count"] == 77  # native type kept through rendering
    with engine.db.session() as s:
        run = s.exec(select(RunRow).where(RunRow.recipe_uid == uid)).one()
        steps = s.exec(
            select(StepRow).where(StepRow.run_id == run.id).order_by(col(StepRow.index))
        ).all()
    assert run.status == "succeeded"
    assert [st.status for st in steps] == ["succeeded", "succeeded"]
    assert steps[0].input == {"message": "Cat Eye Sunglasses sold out", "count": 77}
    assert steps[0].output == {"echoed": "Cat Eye Sunglasses sold out", "count": 77}


async def test_failed_condition_is_explained(
    engine: Engine, recorder: Recorder, tmp_path: Path
) -> None:
    load(engine, tmp_path)
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(5)))
    assert result.runs == []
    with engine.db.session() as s:
        match = s.exec(select(MatchRow).where(MatchRow.event_id == result.event_id)).one()
    assert match.matched is False
    assert match.stage == "conditions"
    assert match.reason is not None and match.reason["condition"] == 0
    assert "5" in str(match.reason)
    assert recorder.calls == []


async def test_duplicate_event_runs_once(
    engine: Engine, recorder: Recorder, tmp_path: Path
) -> None:
    load(engine, tmp_path)
    first = await engine.ingest(NewEvent(type="test.stock", payload=product(0), dedup_key="hash-1"))
    again = await engine.ingest(NewEvent(type="test.stock", payload=product(0), dedup_key="hash-1"))
    await engine.drain()
    assert again.duplicate and again.event_id == first.event_id
    assert len(recorder.named("test.record")) == 2  # two steps of one run


async def test_unsubscribed_types_and_other_stores_are_not_considered(
    engine: Engine, recorder: Recorder, tmp_path: Path
) -> None:
    load(engine, tmp_path, RECIPE.replace("trigger:", "store: only-this\ntrigger:"))
    elsewhere = await engine.ingest(NewEvent(type="test.stock", payload=product(0), store="other"))
    here = await engine.ingest(NewEvent(type="test.stock", payload=product(0), store="only-this"))
    await engine.drain()
    assert elsewhere.decisions == [] and len(here.runs) == 1


async def test_retry_is_durable_and_waits_for_the_clock(
    engine: Engine, recorder: Recorder, clock: ManualClock, tmp_path: Path
) -> None:
    load(
        engine,
        tmp_path,
        RECIPE.replace(
            'use: test.record\n    with:\n      message: "after {{ steps.note.echoed }}"',
            "use: test.flaky",
        ),
    )
    recorder.failures["second"] = 2
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()  # nothing due: the retry waits for the clock
    with engine.db.session() as s:
        run = s.get(RunRow, result.runs[0])
        assert run is not None and run.status == "retrying"
    for _ in range(2):
        clock.advance(60)
        await engine.drain()
    with engine.db.session() as s:
        run = s.get(RunRow, result.runs[0])
        step = s.get(StepRow, (result.runs[0], 1))
    assert run is not None and run.status == "succeeded"
    assert step is not None and step.attempts == 3
    assert len(recorder.named("test.record")) == 1  # the completed first step never repeats


async def test_permanent_failure_fails_run_unless_continue_on_error(
    engine: Engine, recorder: Recorder, tmp_path: Path
) -> None:
    text = RECIPE.replace(
        "  - id: second\n    use: test.record\n    with:\n"
        '      message: "after {{ steps.note.echoed }}"\n',
        "  - id: second\n    use: test.flaky\n    continue_on_error: true\n"
        "    with: {mode: permanent}\n  - id: third\n    use: test.record\n",
    )
    load(engine, tmp_path, text)
    recorder.failures["second"] = 1
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    with engine.db.session() as s:
        run = s.get(RunRow, result.runs[0])
        steps = s.exec(
            select(StepRow).where(StepRow.run_id == result.runs[0]).order_by(col(StepRow.index))
        ).all()
    assert run is not None and run.status == "succeeded_with_errors"
    assert [st.status for st in steps] == ["succeeded", "failed", "succeeded"]
    assert steps[1].error == "the remote side refused it"


async def test_step_if_skips(engine: Engine, recorder: Recorder, tmp_path: Path) -> None:
    text = RECIPE.replace(
        "  - id: second\n",
        '  - id: second\n    if: {">": [{"var": "product.inventory_level"}, 10]}\n',
    )
    load(engine, tmp_path, text)
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    with engine.db.session() as s:
        step = s.get(StepRow, (result.runs[0], 1))
    assert step is not None and step.status == "skipped"
    assert len(recorder.named("test.record")) == 1


async def test_own_write_does_not_retrigger_and_deep_chains_stop(
    engine: Engine, recorder: Recorder, tmp_path: Path
) -> None:
    uid = load(engine, tmp_path)
    own = CausedBy(run_id="run_x", recipe_uid=uid, depth=1, chain=("sold-out-alert",))
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(0), caused_by=own))
    assert result.runs == [] and result.decisions[0].stage == "loop"
    deep = CausedBy(run_id="run_y", recipe_uid="rcp_other", depth=9, chain=("a", "b"))
    stopped = await engine.ingest(NewEvent(type="test.stock", payload=product(0), caused_by=deep))
    await engine.drain()
    with engine.db.session() as s:
        run = s.get(RunRow, stopped.runs[0])
    assert run is not None and run.status == "loop_stopped"
    assert run.status_reason is not None and "a → b → sold-out-alert" in run.status_reason
    assert recorder.calls == []


async def test_restart_resumes_from_last_completed_step(
    db, registry, clock: ManualClock, recorder: Recorder, tmp_path: Path
) -> None:
    from engine.context import Services

    first = Engine(db, registry, clock=clock, services=Services())
    uid = load(first, tmp_path)
    recorder.failures["second"] = 1
    text_flaky = RECIPE.replace(
        'use: test.record\n    with:\n      message: "after {{ steps.note.echoed }}"',
        "use: test.flaky",
    )
    first.recipes.update(
        "default",
        "sold-out-alert",
        load_file_doc(tmp_path, text_flaky, first),
        expected_version=None,
    )
    await first.start(workers=1)
    result = await first.ingest(NewEvent(type="test.stock", payload=product(0)))
    await first.drain()
    await first.stop()
    assert len(recorder.named("test.record")) == 1
    # a new process: the waiting run is a row, and picks up where it left off
    second = Engine(db, registry, clock=clock, services=Services())
    await second.start(workers=1)
    clock.advance(60)
    await second.drain()
    await second.stop()
    with db.session() as s:
        run = s.get(RunRow, result.runs[0])
    assert run is not None and run.status == "succeeded"
    assert run.recipe_uid == uid
    assert len(recorder.named("test.record")) == 1


def load_file_doc(tmp_path: Path, text: str, engine: Engine) -> dict[str, Any]:
    path = tmp_path / "changed.yaml"
    path.write_text(text)
    result = load_file(path, engine.registry)
    assert result.errors == []
    return result.recipes[0][1].document()


async def test_receive_holds_its_answer_while_workers_are_behind(
    db: Database, registry: Registry, clock: ManualClock, recorder: Recorder, tmp_path: Path
) -> None:
    settings = EngineSettings(workers=2, backlog=2, backlog_wait=30.0)
    engine = Engine(db, registry, clock=clock, services=Services(), settings=settings)
    load(engine, tmp_path)
    events = [
        NewEvent(type="test.stock", payload=product(0), workspace="default", dedup_key=f"k{i}")
        for i in range(3)
    ]
    for new in events[:2]:  # at the limit: answered at once
        await engine.receive(new)
    assert engine.counters["backpressure_waits"] == 0
    held = asyncio.create_task(engine.receive(events[2]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not held.done()  # three runs wait for a worker and none is running
    with engine.db.session() as s:  # the held event is stored all the same
        assert len(s.exec(select(EventRow)).all()) == 3
    await engine.start()
    try:
        result = await asyncio.wait_for(held, 10)
        assert not result.duplicate and len(result.runs) == 1
        assert engine.counters["backpressure_waits"] == 1
        await engine.drain()
        assert len(recorder.calls) == 6  # two steps for each of the three events
    finally:
        await engine.stop()


async def test_an_engine_started_without_workers_only_ingests(
    db: Database, registry: Registry, clock: ManualClock, recorder: Recorder, tmp_path: Path
) -> None:
    engine = Engine(db, registry, clock=clock, services=Services())
    load(engine, tmp_path)
    await engine.start(workers=0)
    try:
        runs = 0
        for i in range(40):  # far past the backlog: nothing is held without workers
            new = NewEvent(type="test.stock", payload=product(0), dedup_key=f"k{i}")
            runs += len((await asyncio.wait_for(engine.receive(new), 5)).runs)
        assert runs == 40
        assert engine.queue.due() == 10  # the recipe's ten slots; the rest wait for one
        assert engine.counters["backpressure_waits"] == 0
    finally:
        await engine.stop()
    assert recorder.calls == []
