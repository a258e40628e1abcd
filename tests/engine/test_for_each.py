"""``for_each`` steps through the engine: sub-steps per item with ``item`` and ``index`` in
scope, per-item outputs, idempotency keys and trace rows, the ``max_items`` cap, failures and
validation (a restart mid-list is in ``test_durable_recovery``)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.authoring.validation import validate_document
from engine.clock import ManualClock
from engine.errors import ConflictError
from engine.store.db import Database
from tests.engine.test_durable_support import (
    Probe,
    add,
    fire,
    registry_for,
    run,
    running,
    steps,
)
from tests.fakes import Recorder

LINES = {"lines": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}]}


def loop(**extra: Any) -> dict[str, Any]:
    return {
        "id": "each",
        "for_each": "{{ lines }}",
        "steps": [
            {"id": "say", "use": "test.record", "with": {"message": "{{ index }}:{{ item.sku }}"}},
            {"id": "again", "use": "test.record", "with": {"message": "{{ steps.say.echoed }}!"}},
        ],
        **extra,
    }


AFTER = {
    "id": "after",
    "use": "test.record",
    "with": {"message": "{{ steps.each.count }} {{ steps.each.results[1].again.echoed }}"},
}


async def test_sub_steps_run_per_item_with_their_own_keys_rows_and_outputs(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "lines", "actions": [loop(), AFTER]})
        [made] = await fire(engine, LINES)
        await engine.drain()
        assert run(engine, made).status_reason is None
        assert run(engine, made).status == "succeeded"
        rows = steps(engine, made)
    messages = [c[1]["message"] for c in recorder.calls]
    assert messages == ["0:a", "0:a!", "1:b", "1:b!", "2:c", "2:c!", "3 1:b!"]
    keys = [c[2] for c in recorder.calls[:2]]
    assert keys == [f"{made}:each[0].say", f"{made}:each[0].again"]
    assert [r.step_id for r in rows] == [
        "each",
        "after",
        *[f"each[{i}].{s}" for i in range(3) for s in ("say", "again")],
    ]
    assert rows[0].status == "succeeded"
    assert rows[0].output is not None
    assert rows[0].output["count"] == 3
    assert rows[0].output["truncated"] is False
    assert rows[0].output["results"][2]["say"]["echoed"] == "2:c"
    assert rows[0].input == {"for_each": LINES["lines"], "total": 3, "max_items": 50}


async def test_max_items_truncates_with_a_note_or_fails_the_step(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "cut", "actions": [loop(max_items=2)]})
        add(
            engine,
            {
                "id": "refuse",
                "trigger": {"type": "custom.refuse"},
                "actions": [loop(max_items=2, on_overflow="fail")],
            },
        )
        [cut] = await fire(engine, LINES)
        [refused] = await fire(engine, LINES, type_="custom.refuse")
        await engine.drain()
        output = steps(engine, cut)[0].output
        assert output is not None
        assert (output["count"], output["total"], output["truncated"]) == (2, 3, True)
        assert output["note"] == "3 items; only the first 2 ran (max_items)"
        failed = run(engine, refused)
        assert failed.status == "failed"
        assert "3 items, more than max_items (2)" in (failed.status_reason or "")
    assert [c[1]["message"] for c in recorder.calls] == ["0:a", "0:a!", "1:b", "1:b!"]


async def test_a_failing_sub_step_fails_the_loop_unless_it_continues_on_error(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    bad = {"id": "bad", "use": "probe.fail", "with": {"kind": "permanent", "times": 1}}
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "stops", "actions": [loop() | {"steps": [bad]}, AFTER]})
        [stopped] = await fire(engine, LINES)
        await engine.drain()
        assert run(engine, stopped).status == "failed"
        assert "item 0, step bad: it broke" in (run(engine, stopped).status_reason or "")
        assert [(r.step_id, r.status) for r in steps(engine, stopped)] == [
            ("each", "failed"),
            ("each[0].bad", "failed"),
        ]
        goes_on = {"steps": [bad | {"continue_on_error": True}]}
        add(
            engine,
            {"id": "goes-on", "trigger": {"type": "custom.on"}, "actions": [loop() | goes_on]},
        )
        [went] = await fire(engine, LINES, type_="custom.on")
        await engine.drain()
        assert run(engine, went).status == "succeeded_with_errors"
        assert [r.status for r in steps(engine, went)] == [  # every item's key fails once
            "succeeded",
            "failed",
            "failed",
            "failed",
        ]
        with pytest.raises(ConflictError, match="has no failed step; replay it from the start"):
            await engine.replay(went, from_step="failed")  # the loop itself succeeded


def test_validation_refuses_a_for_each_inside_a_for_each_naming_the_field() -> None:
    registry = registry_for(Probe(), Recorder())
    inner = loop(id="inner")
    document = {
        "id": "nested",
        "name": "nested",
        "trigger": {"type": "probe.event"},
        "actions": [loop() | {"steps": [inner]}],
    }
    recipe, errors = validate_document(document, registry)
    assert recipe is None
    assert [(e.path, e.message) for e in errors] == [
        (
            "actions[0].steps[0].for_each",
            "a for_each step cannot be inside another for_each (one level only)",
        )
    ]
    bad_use = loop() | {"steps": [{"id": "x", "use": "test.nope"}]}
    _, errors = validate_document(document | {"actions": [bad_use]}, registry)
    assert [e.path for e in errors] == ["actions[0].steps[0].use"]
    recipe, errors = validate_document(document | {"actions": [loop()]}, registry)
    assert errors == []
    assert recipe is not None
    assert recipe.actions[0].use == "core.for_each"


async def test_a_replay_from_the_failed_item_carries_over_the_items_done(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    probe = Probe()
    gate = {
        "id": "gate",
        "use": "probe.fail",
        "if": {"==": [{"var": "index"}, 1]},
        "with": {"kind": "permanent", "until_fixed": True},
    }
    say = {"id": "say", "use": "test.record", "with": {"message": "{{ index }}:{{ item.sku }}"}}
    after = {"id": "after", "use": "test.record", "with": {"message": "n={{ steps.each.count }}"}}
    async with running(db, registry_for(probe, recorder), clock) as engine:
        add(engine, {"id": "gated", "actions": [loop(steps=[say, gate]), after]})
        [failed] = await fire(engine, LINES)
        await engine.drain()
        assert run(engine, failed).status == "failed"
        assert [c[1]["message"] for c in recorder.calls] == ["0:a", "1:b"]
        probe.fixed = True
        made = await engine.replay(failed, from_step="failed")
        await engine.drain()
        assert run(engine, made.run_id).status == "succeeded"
        rows = steps(engine, made.run_id)
    messages = [c[1]["message"] for c in recorder.calls]
    assert messages == ["0:a", "1:b", "2:c", "n=3"]  # items 0 and 1's writes are not repeated
    assert [(r.step_id, r.status) for r in rows] == [
        ("each", "succeeded"),
        ("after", "succeeded"),
        ("each[0].say", "succeeded"),
        ("each[0].gate", "skipped"),
        ("each[1].say", "succeeded"),
        ("each[1].gate", "succeeded"),
        ("each[2].say", "succeeded"),
        ("each[2].gate", "skipped"),
    ]
    assert rows[0].output is not None
    assert [r["say"]["echoed"] for r in rows[0].output["results"]] == ["0:a", "1:b", "2:c"]
