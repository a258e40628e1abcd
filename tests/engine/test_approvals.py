"""core.approval: a run waits, durably, for a person's decision or its timeout's default."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from engine.clock import ManualClock
from engine.errors import ConflictError, NotFoundError, RecipeError
from engine.ops.retention import Retention, RetentionSettings
from engine.store.db import Database
from engine.store.models import ApprovalRow
from tests.engine.test_durable_support import (
    Probe,
    add,
    fire,
    jobs,
    registry_for,
    run,
    running,
    steps,
)
from tests.fakes import Recorder

FIRST = {"id": "first", "use": "test.record", "with": {"message": "before"}}
AFTER = {"id": "after", "use": "test.record", "with": {"message": "after"}}


def asking(**extra: Any) -> dict[str, Any]:
    return {
        "id": "ok",
        "use": "core.approval",
        "with": {"title": "Release {{ product.id }}?", "timeout": "2d", **extra},
    }


def approval_of(db: Database, run_id: str) -> ApprovalRow:
    with db.session() as s:
        return s.exec(select(ApprovalRow).where(ApprovalRow.run_id == run_id)).one()


async def test_an_approval_waits_then_a_decision_wakes_the_run_at_once(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "big", "actions": [FIRST, asking(message="worth a lot"), AFTER]})
        start = clock.now()
        [made] = await fire(engine)
        await engine.drain()
        assert run(engine, made).status == "waiting"
        [job] = jobs(engine)
        assert job.due_at.replace(tzinfo=start.tzinfo) == start + timedelta(days=2)
        pending = approval_of(db, made)
        assert (pending.status, pending.title, pending.message) == (
            "pending",
            "Release 1?",
            "worth a lot",
        )
        assert [s.status for s in steps(engine, made)] == ["succeeded", "waiting"]
        clock.advance(3600)
        decided = await engine.decide_approval(
            pending.id, "approve", by="key:k1", comment="fine", workspace="default"
        )
        assert decided.status == "approved"
        await engine.drain()  # no clock move: the decision made the job due now
        assert run(engine, made).status == "succeeded"
        trace = steps(engine, made)
        assert trace[1].output == {
            "approval_id": pending.id,
            "decision": "approve",
            "approved": True,
            "decided_by": "key:k1",
            "decided_at": (start + timedelta(hours=1)).isoformat(),
            "comment": "fine",
            "timed_out": False,
        }
        assert [c[1]["message"] for c in recorder.calls] == ["before", "after"]
        with pytest.raises(ConflictError, match="already decided: approved by key:k1"):
            await engine.decide_approval(pending.id, "reject", by="key:k2")
    assert jobs(engine) == []


async def test_a_rejection_stops_the_run_as_skipped(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "big", "actions": [asking(), AFTER]})
        [made] = await fire(engine)
        await engine.drain()
        ident = approval_of(db, made).id
        await engine.decide_approval(ident, "reject", by="console:key:k1", comment="too much")
        await engine.drain()
        ended = run(engine, made)
        assert ended.status == "skipped"
        assert ended.status_reason == "approval ok rejected (console:key:k1): too much"
        assert recorder.calls == []
        output = steps(engine, made)[0].output
        assert output is not None and output["decision"] == "reject"


async def test_on_reject_continue_lets_later_steps_branch_on_the_decision(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    approved_only = {**AFTER, "if": {"==": [{"var": "steps.ok.decision"}, "approve"]}}
    rejected_only = {
        "id": "told",
        "use": "test.record",
        "with": {"message": "rejected: {{ steps.ok.comment }}"},
        "if": {"==": [{"var": "steps.ok.decision"}, "reject"]},
    }
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(
            engine,
            {"id": "big", "actions": [asking(on_reject="continue"), approved_only, rejected_only]},
        )
        [made] = await fire(engine)
        await engine.drain()
        await engine.decide_approval(approval_of(db, made).id, "reject", by="link", comment="no")
        await engine.drain()
        assert run(engine, made).status == "succeeded"
        assert [s.status for s in steps(engine, made)] == ["succeeded", "skipped", "succeeded"]
        assert [c[1]["message"] for c in recorder.calls] == ["rejected: no"]


@pytest.mark.parametrize(
    ("default", "status", "calls"), [("reject", "skipped", 0), ("approve", "succeeded", 1)]
)
async def test_the_timeout_applies_the_default_decision(
    db: Database, clock: ManualClock, recorder: Recorder, default: str, status: str, calls: int
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "big", "actions": [asking(default=default), AFTER]})
        [made] = await fire(engine)
        await engine.drain()
        clock.advance(2 * 86_400 - 1)
        await engine.drain()
        assert run(engine, made).status == "waiting"
        clock.advance(1)
        await engine.drain()
        assert run(engine, made).status == status
        output = steps(engine, made)[0].output
        assert output is not None
        assert (output["decision"], output["decided_by"], output["timed_out"]) == (
            default,
            "timeout",
            True,
        )
        assert len(recorder.calls) == calls
        with pytest.raises(ConflictError, match="already decided"):
            await engine.decide_approval(output["approval_id"], "approve", by="key:k1")


async def test_cancelling_the_run_ends_its_approval(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "big", "actions": [asking(), AFTER]})
        [made] = await fire(engine)
        await engine.drain()
        changes = await engine.cancel([made], workspace="default")
        assert changes.changed == {made: "cancelled"}
        ident = approval_of(db, made).id
        assert approval_of(db, made).status == "cancelled"
        with pytest.raises(ConflictError, match="already decided: cancelled"):
            await engine.decide_approval(ident, "approve", by="key:k1")
        clock.advance(3 * 86_400)
        await engine.drain()
        assert run(engine, made).status == "cancelled"
        assert recorder.calls == []


async def test_an_approval_of_another_workspace_is_not_found(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "big", "actions": [asking(), AFTER]})
        [made] = await fire(engine)
        await engine.drain()
        ident = approval_of(db, made).id
        with pytest.raises(NotFoundError):
            await engine.decide_approval(ident, "approve", by="key:k9", workspace="other")
        assert approval_of(db, made).status == "pending"


async def test_timeouts_are_bounded(db: Database, clock: ManualClock, recorder: Recorder) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        with pytest.raises(RecipeError, match="an approval waits from 1 minute to 30 days"):
            add(engine, {"id": "long", "actions": [asking(timeout="31d")]})
        with pytest.raises(RecipeError, match="default"):
            add(engine, {"id": "odd", "actions": [asking(default="maybe")]})


async def test_a_decision_after_a_restart_resumes_the_run(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    registry = registry_for(Probe(), recorder)
    async with running(db, registry, clock) as first:
        add(first, {"id": "big", "actions": [FIRST, asking(), AFTER]})
        [made] = await fire(first)
        await first.drain()
        assert run(first, made).status == "waiting"
    clock.advance(86_400)
    async with running(db, registry, clock) as second:  # a new process: the approval is a row
        await second.drain()
        assert run(second, made).status == "waiting"
        await second.decide_approval(approval_of(db, made).id, "approve", by="key:k1")
        await second.drain()
        assert run(second, made).status == "succeeded"
    assert [c[1]["message"] for c in recorder.calls] == ["before", "after"]


async def test_a_timeout_that_passed_while_stopped_is_honoured_at_start(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    registry = registry_for(Probe(), recorder)
    async with running(db, registry, clock) as first:
        add(first, {"id": "big", "actions": [asking(default="approve"), AFTER]})
        [made] = await fire(first)
        await first.drain()
    clock.advance(5 * 86_400)
    async with running(db, registry, clock) as second:
        await second.drain()
        assert run(second, made).status == "succeeded"
        assert approval_of(db, made).decided_by == "timeout"
    assert [c[1]["message"] for c in recorder.calls] == ["after"]


async def test_retention_deletes_a_finished_runs_approval_with_it(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        add(engine, {"id": "big", "actions": [asking(), AFTER]})
        [made] = await fire(engine)
        await engine.drain()
        await engine.decide_approval(approval_of(db, made).id, "approve", by="key:k1")
        await engine.drain()
        assert run(engine, made).status == "succeeded"
    clock.advance(2 * 86_400)
    await Retention(db, clock, RetentionSettings.days(succeeded=1)).run()
    with db.session() as s:
        assert s.exec(select(ApprovalRow).where(ApprovalRow.run_id == made)).all() == []
