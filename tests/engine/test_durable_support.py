"""Shared pieces of the durable-execution tests: a probe connector whose actions sleep on the
test's clock, fail on demand and behave as an idempotent remote, and an engine built on it.

No test waits on the wall clock: slow actions sleep on the ManualClock, and :func:`until`
spins the event loop (``sleep(0)``) until a condition holds.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field
from sqlmodel import col, select

from engine import Engine, EngineSettings
from engine.clock import ManualClock
from engine.context import ActionContext, Services
from engine.errors import PermanentError, Retry, RetryableError
from engine.model.events import NewEvent
from engine.model.recipe import Recipe
from engine.model.retry import RetryPolicy
from engine.plan.modes import Admission, Verdict
from engine.queue.base import NewJob
from engine.registry import ActionSpec, Connector, Params, Registry, TriggerSpec
from engine.store.db import Database
from engine.store.models import EventRow, JobRow, MatchRow, RunRow, StepRow
from sous.container import connectors
from tests.fakes import Recorder, recording_connector


@dataclass
class Probe:
    """What the probe actions saw: overlaps, calls, and writes applied once per key."""

    active: Counter[str] = field(default_factory=Counter)
    most: Counter[str] = field(default_factory=Counter)
    running: int = 0
    most_running: int = 0
    sleeping: int = 0
    order: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    """(idempotency key, tag) of every call, repeated ones included."""
    applied: dict[str, str] = field(default_factory=dict)
    """idempotency key → tag: the remote side's state (a repeated key is not applied again)."""
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fixed: bool = False
    """``probe.fail`` steps with ``until_fixed`` fail until this is set."""
    hang: set[str] = field(default_factory=set)
    """Tags whose write, once applied, blocks forever (a process about to die)."""


class SlowParams(Params):
    key: str | int = "*"
    tag: str = ""
    seconds: float = 5.0


class FailParams(Params):
    kind: str = Field(pattern="^(timeout|retry|retryable|permanent|status)$")
    status: int | None = None
    defer: float | None = None
    times: int = 1
    per: str = Field(default="key", pattern="^(key|step)$")
    """Count ``times`` per idempotency key (one run's step) or per step id (across runs)."""
    until_fixed: bool = False
    message: str = "it broke"


class WriteParams(Params):
    tag: str


def probe_connector(probe: Probe) -> Connector:
    async def slow(ctx: ActionContext, params: SlowParams) -> dict[str, Any]:
        key = str(params.key)
        probe.active[key] += 1
        probe.running += 1
        probe.most[key] = max(probe.most[key], probe.active[key])
        probe.most_running = max(probe.most_running, probe.running)
        probe.order.append(params.tag)
        probe.sleeping += 1
        try:
            await ctx.clock.sleep(params.seconds)
        finally:
            probe.sleeping -= 1
            probe.active[key] -= 1
            probe.running -= 1
        return {"tag": params.tag}

    async def fail(ctx: ActionContext, params: FailParams) -> dict[str, Any]:
        key = ctx.idempotency_key
        probe.calls.append((key, "fail"))
        if params.per == "step":
            key = ctx.step_id
        if params.until_fixed and probe.fixed:
            return {"ok": True, "attempt": ctx.attempt}
        if not params.until_fixed and probe.failures[key] >= params.times:
            return {"ok": True, "attempt": ctx.attempt}
        probe.failures[key] += 1
        if params.kind == "timeout":  # what asyncio.wait_for raises when the time is up
            raise TimeoutError
        if params.kind == "retry":
            raise Retry(defer=params.defer or 30, reason=params.message)
        if params.kind == "retryable":
            raise RetryableError(params.message)
        if params.kind == "status":
            error = RetryableError(params.message)
            error.status = params.status  # type: ignore[attr-defined]
            raise error
        raise PermanentError(params.message)

    async def write(ctx: ActionContext, params: WriteParams) -> dict[str, Any]:
        key = ctx.idempotency_key
        probe.calls.append((key, params.tag))
        repeated = key in probe.applied
        probe.applied.setdefault(key, params.tag)
        if params.tag in probe.hang:
            probe.sleeping += 1
            await asyncio.Event().wait()  # the process dies here, after the write
        return {"tag": params.tag, "repeated": repeated}

    return Connector(
        name="probe",
        description="actions for the durable-execution tests",
        triggers=(
            TriggerSpec(type="probe.event", description="anything", sample={"product": {"id": 1}}),
        ),
        actions=(
            ActionSpec(
                name="probe.slow",
                description="sleep on the clock",
                params=SlowParams,
                handler=slow,
                timeout=3600,
            ),
            ActionSpec(
                name="probe.fail",
                description="fail on demand",
                params=FailParams,
                handler=fail,
                retry=RetryPolicy(tries=3, backoff=10, jitter=0),
                timeout=60,
            ),
            ActionSpec(
                name="probe.write",
                description="an idempotent remote write",
                params=WriteParams,
                handler=write,
                writes="the probe",
            ),
        ),
    )


def registry_for(probe: Probe, recorder: Recorder) -> Registry:
    return Registry([*connectors(), recording_connector(recorder), probe_connector(probe)])


@asynccontextmanager
async def running(
    db: Database,
    registry: Registry,
    clock: ManualClock,
    *,
    services: Services | None = None,
    settings: EngineSettings | None = None,
    workers: int = 8,
) -> AsyncIterator[Engine]:
    engine = Engine(
        db,
        registry,
        clock=clock,
        services=services or Services(),
        settings=settings or EngineSettings(workers=workers),
    )
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


def add(engine: Engine, document: dict[str, Any], workspace: str = "default") -> str:
    base = {"name": document.get("id", "r"), "trigger": {"type": "probe.event"}}
    stored = engine.recipes.create(workspace, {**base, **document})
    engine.refresh(stored)
    return stored.uid


async def fire(
    engine: Engine, payload: dict[str, Any] | None = None, type_: str = "probe.event", **kw: Any
) -> list[str]:
    result = await engine.ingest(
        NewEvent(type=type_, payload=payload or {"product": {"id": 1}}, **kw)
    )
    return result.runs


async def until(cond: Callable[[], bool], limit: float = 60.0) -> None:
    """Spin the event loop until ``cond()`` holds. Nothing waits on the wall clock; ``limit``
    (real seconds) only turns a hang into a failure on a very busy machine."""
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0)


async def settled(engine: Engine, probe: Probe) -> None:
    """Every busy worker sleeps on the clock and nothing is due."""
    for _ in range(3):  # let sleepers a clock move just woke resume first
        await asyncio.sleep(0)
    await until(lambda: engine.queue.due() == 0 and engine.workers.busy == probe.sleeping)


def run(engine: Engine, run_id: str) -> RunRow:
    with engine.db.session() as s:
        found = s.get(RunRow, run_id)
        assert found is not None
        return found


def runs(engine: Engine, uid: str | None = None) -> list[RunRow]:
    with engine.db.session() as s:
        query = select(RunRow).order_by(col(RunRow.created_at), col(RunRow.id))
        if uid is not None:
            query = query.where(RunRow.recipe_uid == uid)
        return list(s.exec(query).all())


def steps(engine: Engine, run_id: str) -> list[StepRow]:
    with engine.db.session() as s:
        return list(
            s.exec(
                select(StepRow).where(StepRow.run_id == run_id).order_by(col(StepRow.index))
            ).all()
        )


def jobs(engine: Engine) -> list[JobRow]:
    with engine.db.session() as s:
        return list(s.exec(select(JobRow)).all())


def events(engine: Engine, type_: str) -> list[EventRow]:
    with engine.db.session() as s:
        return list(s.exec(select(EventRow).where(EventRow.type == type_)).all())


def match_of(engine: Engine, run_id: str) -> MatchRow:
    with engine.db.session() as s:
        return s.exec(select(MatchRow).where(MatchRow.run_id == run_id)).one()


# -- the slot bookkeeping on its own ----------------------------------------------------------


def _recipe(**changes: Any) -> Recipe:
    doc = {
        "id": "r",
        "name": "r",
        "trigger": {"type": "probe.event"},
        "actions": [{"use": "core.set"}],
    }
    return Recipe.model_validate({**doc, **changes})


def test_parallel_slots_fill_then_wait_in_order() -> None:
    admission = Admission()
    recipe = _recipe(mode="parallel", max_runs=2)
    verdicts = [
        admission.admit(f"r{i}", "g", recipe, False, NewJob("run", f"r{i}")).verdict
        for i in range(4)
    ]
    assert verdicts == [Verdict.START, Verdict.START, Verdict.PENDING, Verdict.PENDING]
    assert [j.ref for j in admission.leave("r1")] == ["r2"]
    assert admission.leave("r3") == []  # leaving the line frees no slot
    assert [j.ref for j in admission.leave("r0")] == []
    assert admission.holders("g") == ["r2"]


def test_single_skips_queued_holds_restart_supersedes() -> None:
    admission = Admission()
    single = _recipe(mode="single")
    assert admission.admit("a", "s", single, False, NewJob("run", "a")).verdict == Verdict.START
    skipped = admission.admit("b", "s", single, False, NewJob("run", "b"))
    assert (
        skipped.verdict == Verdict.SKIP and skipped.reason is not None and "run a" in skipped.reason
    )
    queued = _recipe(mode="queued", max_runs=1)
    assert [admission.admit(x, "q", queued, False, NewJob("run", x)).verdict for x in "cde"] == [
        Verdict.START,
        Verdict.PENDING,
        Verdict.HOLD,
    ]
    assert (
        admission.admit("f", "q", queued, False, NewJob("run", "f"), forced=True).verdict
        == Verdict.PENDING
    )
    restart = _recipe(mode="restart")
    admission.admit("g", "r", restart, False, NewJob("run", "g"))
    again = admission.admit("h", "r", restart, False, NewJob("run", "h"))
    assert again.verdict == Verdict.PENDING and again.supersede == ("g",)
    third = admission.admit("i", "r", restart, False, NewJob("run", "i"))
    assert third.supersede == ("g", "h")


def test_disabled_admission_starts_everything() -> None:
    admission = Admission(enabled=False)
    recipe = _recipe(mode="single")
    assert {admission.admit(x, "g", recipe, False, NewJob("run", x)).verdict for x in "abc"} == {
        Verdict.START
    }
    assert admission.leave("a") == []
