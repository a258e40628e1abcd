"""Execute a run: its steps in order, each with its own timeout, retry policy and trace.

For each step (see :mod:`engine.run.steps`): evaluate its ``if``, render its ``with:``, validate,
call the action under its timeout, and write the step's trace row in the same transaction as
the run's new state. A retryable failure puts the run's job back with a due time (a waiting run
is a row, not a sleeping coroutine); anything else ends the step ``failed`` — and the run too,
unless the step says ``continue_on_error``. A wait (:mod:`engine.run.waits`) hands the job back due
at the end of the wait. Between steps the runner honours cancellation requests (``restart``
mode, the API), and a run that ends hands its slot to the next run of its group
(:mod:`engine.plan.modes`) in the same transaction.

After a crash the run's job comes back from the job table and the run resumes at its first
step without a committed trace row: a step whose action ran but whose trace did not commit runs
again, with the same idempotency key (``run:step``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine import observe
from engine.clock import Clock
from engine.context import Services
from engine.errors import RetryableError
from engine.model.events import CausedBy, Event, NewEvent
from engine.model.recipe import Step
from engine.model.run import BranchProgress, EachProgress, ParallelProgress, RunState
from engine.model.status import FINAL, GOING, RunStatus, StepStatus
from engine.plan.modes import NEVER_STORED
from engine.queue.base import Job, JobQueue, NewJob
from engine.registry import Registry
from engine.run import approval, calls, foreach, ledger, parallel
from engine.run.alerts import ALERT_FAILURE, alert_lock, failure_notice
from engine.run.ledger import step_row
from engine.run.runstate import (
    event_from_row,
    load_run,
    parse_time,
    seal,
)
from engine.run.steps import SecretsView, StepExecutor, StepFailed, kind_of, retries
from engine.run.waits import Recheck, Wait, recheck, refresh, reruns
from engine.store.db import Database, Tx, write_until_done
from engine.store.models import RunRow, StepRow
from engine.store.usage import Key, UsageLimits, UsageMeter, metering, usage_key
from engine.store.vault import Cipher, Vault

if TYPE_CHECKING:
    from engine.contracts import RunnerHost

__all__ = ["Runner", "SecretsView", "StepFailed", "event_from_row"]

log = logging.getLogger("sous.runner")

RUNS = RunRow.__table__  # type: ignore[attr-defined]
STEPS = StepRow.__table__  # type: ignore[attr-defined]


class Runner:
    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        registry: Registry,
        clock: Clock,
        services: Services,
        engine: RunnerHost,
    ) -> None:
        self._db = db
        self._queue = queue
        self._registry = registry
        self._clock = clock
        self._services = services
        self._engine = engine
        self.steps = StepExecutor(registry, clock, services)
        self.limits = UsageLimits(db, clock)
        """The workspaces' daily usage limits, checked before each step."""
        self.executing: set[str] = set()
        """Runs a worker is executing right now (in this process)."""

    # -- loading --------------------------------------------------------------------------
    @property
    def cipher(self) -> Cipher | None:
        """The vault's cipher, which seals step outputs whose traces mask secrets."""
        vault = self._services.find(Vault)
        return vault.cipher if vault is not None else None

    # -- execution ------------------------------------------------------------------------
    async def execute(self, job: Job) -> None:
        state: RunState | None = job.hint if isinstance(job.hint, RunState) else None
        job.hint = None
        if state is None:
            run_id, cipher = job.ref, self.cipher
            state = await self._db.read(lambda tx: load_run(tx, run_id, cipher))
            if state is None:  # finished, held or gone: nothing to do but drop the job
                await self._drop(job)
                return
        run_id = state.run_id
        self.executing.add(run_id)
        try:
            with observe.work("run", event_id=state.event.id, run_id=run_id):  # logs, traces
                await self._steps(job, state)
        finally:
            self.executing.discard(run_id)

    async def _drop(self, job: Job) -> None:
        admission = self._engine.admission
        group, started = admission.depart(job.ref)

        def write(tx: Tx) -> None:
            self._queue.complete(tx, job)
            if started:
                self._queue.enqueue(tx, started)

        await self._leave(job.ref, group, started, write, f"dropping job {job.id}")
        admission.cancel_requests.pop(job.ref, None)

    async def _leave(
        self,
        run_id: str,
        group: str | None,
        started: list[NewJob],
        write: Callable[[Tx], None],
        what: str,
        notice: NewEvent | None = None,
    ) -> None:
        """Write a run's departure from its slot (with ``notice``, an event stored in the same
        transaction); if the write fails for good, the run takes its slot back (and the runs it
        would have started wait again)."""
        try:
            if notice is not None:
                await self._engine.record_failure(notice, write)
            else:
                await write_until_done(self._db.writer, write, self._clock.sleep, what)
        except BaseException:
            if group is not None:
                self._engine.admission.rejoin(run_id, group, started)
            raise

    async def _steps(self, job: Job, state: RunState) -> None:
        recipe = state.recipe
        requests = self._engine.admission.cancel_requests
        while state.next_step < len(recipe.actions):
            reason = requests.get(state.run_id)
            if reason is not None:
                if reason is NEVER_STORED:  # its event turned out a duplicate: no run to end
                    await self._drop(job)
                else:
                    await self._save(
                        state, None, None, None, RunStatus.CANCELLED, job, reason=reason
                    )
                return
            index = state.next_step
            step = recipe.actions[index]
            if step.is_loop():
                if not await self._for_each(state, step, index, job):
                    return
                continue
            if step.is_parallel():
                if not await self._parallel(state, step, index, job):
                    return
                continue
            if state.wait is not None and not reruns(state.wait):
                if not await self._resume_wait(state, step, index, job):
                    return
                continue
            t0 = self._clock.monotonic()
            again = reruns(state.wait)  # a call's wait: its step runs again, the same attempt
            state.wait = None
            state.attempts = max(state.attempts, 1) if again else state.attempts + 1
            record: dict[str, Any] = {"attempts": state.attempts, "started_at": self._clock.now()}
            key = usage_key(
                state.workspace, record["started_at"], state.event.store, state.recipe_uid
            )
            if not state.test and not again:  # a test run sends nothing
                refused = self._over_limit(state, key, step, index)
                if refused is not None:
                    await self._save(
                        state, None, None, None, RunStatus.CANCELLED, job, reason=refused
                    )
                    return
                _count_step(self._db.usage, key)
            try:
                with (
                    observe.span("step", step=step.id or str(index), action=step.use),
                    metering(self._db.usage, key),
                ):
                    done = await self.steps.run(state, step, index, lambda n: self._emit(state, n))
            except Wait as wait:
                if not await self._begin_wait(state, step, index, job, wait, record):
                    return
                continue
            except StepFailed as exc:
                if not await self._failed(state, step, index, job, exc, record, t0):
                    return
                continue
            record.update(
                status=done.outcome,
                input=done.traced_in,
                output=done.traced_out,
                finished_at=self._clock.now(),
                duration_ms=(self._clock.monotonic() - t0) * 1000,
                attempt_log=state.tries or None,
            )
            if done.output is not None and done.traced_out != done.output:
                record["output_sealed"] = seal(self.cipher, done.output)
            if done.output is not None:
                state.outputs[step.id or str(index)] = done.output
            if await self._save(state, index, step, record, _advance(state), job) in FINAL:
                return

    def _over_limit(self, state: RunState, key: Key, step: Step, index: int) -> str | None:
        """Why the workspace may not take this step today (its daily usage limits)."""
        metrics: tuple[str, ...] = ("runs",) if index == 0 and state.attempts == 1 else ()
        metrics += ("steps",) + ((_METRIC_OF[step.use],) if step.use in _METRIC_OF else ())
        # the run itself was counted when it was made: only more than the limit refuses it
        return self.limits.reached(state.workspace, key[1], metrics, started=("runs",))

    def _attempt_failed(
        self,
        state: RunState,
        step: Step,
        exc: StepFailed,
        record: dict[str, Any],
        now: datetime,
    ) -> float | None:
        """Trace a failed attempt of ``step`` (its rendered input, secrets masked, and the attempt
        log); the delay before its next attempt, or ``None`` when its policy gives up."""
        record.update(status=StepStatus.FAILED, error=str(exc), input=exc.traced_input)
        policy = self.steps.policy(step)
        delay: float | None = None
        if retries(policy, exc, state.attempts):
            delay = exc.defer if exc.defer is not None else policy.delay(state.attempts)
        state.tries = _logged(state.tries, record, exc, now, delay)
        record["attempt_log"] = state.tries
        return delay

    async def _failed(
        self,
        state: RunState,
        step: Step,
        index: int,
        job: Job,
        exc: StepFailed,
        record: dict[str, Any],
        t0: float,
    ) -> bool:
        """Retry, skip past (``continue_on_error``) or fail; True if the run goes on now. The
        trace keeps the rendered input (secrets masked) and every attempt (``attempt_log``)."""
        now = self._clock.now()
        delay = self._attempt_failed(state, step, exc, record, now)
        if delay is not None:
            record.update(status=StepStatus.RETRYING, finished_at=now)
            if state.wait is not None:  # a re-check after a wait failed: the wait row stays
                record.update(
                    status=StepStatus.WAITING,
                    input=state.wait["input"],
                    output=state.wait["output"],
                )
            await self._save(
                state,
                index,
                step,
                record,
                RunStatus.RETRYING,
                job,
                retry_at=now + timedelta(seconds=delay),
            )
            return False
        record["finished_at"] = now
        record["duration_ms"] = (self._clock.monotonic() - t0) * 1000
        made = state.attempts
        state.failures += 1
        state.attempts = 0
        state.tries = []
        state.wait = None
        reason = f"step {step.id}: {exc}" + (
            f" (gave up after {made} attempts)" if made > 1 else ""
        )
        if step.continue_on_error:
            state.next_step += 1
            if state.next_step < len(state.recipe.actions):
                return (
                    await self._save(state, index, step, record, RunStatus.RUNNING, job)
                    not in FINAL
                )
            await self._save(
                state, index, step, record, RunStatus.SUCCEEDED_WITH_ERRORS, job, reason=reason
            )
            return False
        await self._save(
            state, index, step, record, RunStatus.FAILED, job, reason=reason, failure=made
        )
        return False

    # -- steps with sub-steps (for_each, parallel) ------------------------------------------
    async def _open(
        self,
        state: RunState,
        step: Step,
        index: int,
        job: Job,
        t0: float,
        begin: Callable[[datetime], Any],
    ) -> bool | None:
        """Start a step with sub-steps: ``begin(started)`` puts its progress in ``state`` and
        returns its trace input, or ``None`` when its ``if`` is false (the step is skipped). Its
        row is saved ``running``; ``None`` then, for its sub-steps to run, else whether the run
        goes on now (skipped, failed, or ended meanwhile)."""
        started = self._clock.now()
        state.attempts = 1
        record: dict[str, Any] = {"attempts": 1, "started_at": started}
        try:
            traced = begin(started)
        except StepFailed as exc:
            return await self._failed(state, step, index, job, exc, record, t0)
        if traced is None:  # its if was false
            record.update(status=StepStatus.SKIPPED, finished_at=started, duration_ms=0.0)
            return await self._save(state, index, step, record, _advance(state), job) not in FINAL
        state.attempts = 0
        record.update(status=StepStatus.RUNNING, input=traced)
        if await self._save(state, index, step, record, RunStatus.RUNNING, job) in FINAL:
            return False
        return None

    # -- for_each -------------------------------------------------------------------------
    async def _for_each(self, state: RunState, step: Step, index: int, job: Job) -> bool:
        """Run a ``for_each`` step's sub-steps for its items (:mod:`engine.run.foreach`), from
        where it was; True if the run goes on now."""
        t0 = self._clock.monotonic()
        if state.each is None:

            def begin(started: datetime) -> Any:
                each = self.steps.each_list(state, step)
                if each is None:
                    return None
                each.started_at, state.each = started, each
                return foreach.trace_input(step, each)

            opened = await self._open(state, step, index, job, t0, begin)
            if opened is not None:
                return opened
        each = state.each
        assert each is not None
        requests = self._engine.admission.cancel_requests
        while each.item < len(each.items):
            reason = requests.get(state.run_id)
            if reason is not None and reason is not NEVER_STORED:
                await self._save(state, None, None, None, RunStatus.CANCELLED, job, reason=reason)
                return False
            if not await self._each_step(state, step, index, job, each):
                return False
        record = {
            "attempts": 1,
            "started_at": each.started_at,
            "status": StepStatus.SUCCEEDED,
            "input": foreach.trace_input(step, each),
            "output": foreach.output(each),
            "finished_at": self._clock.now(),
        }
        state.outputs[step.id or str(index)] = record["output"]
        state.each = None
        return await self._save(state, index, step, record, _advance(state), job) not in FINAL

    async def _each_step(
        self, state: RunState, step: Step, index: int, job: Job, each: EachProgress
    ) -> bool:
        """Run the next sub-step of the current item; True if the loop goes on now."""
        assert step.steps is not None
        sub = step.steps[each.sub]
        row, named = (
            foreach.row_index(index, each.item, each.sub),
            foreach.named(step, each.item, sub),
        )
        t0 = self._clock.monotonic()
        state.attempts += 1
        record: dict[str, Any] = {"attempts": state.attempts, "started_at": self._clock.now()}
        key = usage_key(state.workspace, record["started_at"], state.event.store, state.recipe_uid)
        if not state.test:
            refused = self._over_limit(state, key, named, row)
            if refused is not None:
                await self._save(state, None, None, None, RunStatus.CANCELLED, job, reason=refused)
                return False
            _count_step(self._db.usage, key)
        scope = {"item": each.items[each.item], "index": each.item, "steps": each.done[each.item]}
        try:
            with (
                observe.span("step", step=named.id or "", action=sub.use),
                metering(self._db.usage, key),
            ):
                done = await self.steps.run(
                    state, named, row, lambda n: self._emit(state, n), scope
                )
        except Wait:
            exc = StepFailed("a step inside for_each cannot wait")
            return await self._each_failed(state, step, index, job, exc, record, t0)
        except StepFailed as exc:
            return await self._each_failed(state, step, index, job, exc, record, t0)
        record.update(
            status=done.outcome,
            input=done.traced_in,
            output=done.traced_out,
            finished_at=self._clock.now(),
            duration_ms=(self._clock.monotonic() - t0) * 1000,
            attempt_log=state.tries or None,
        )
        if done.output is not None:
            each.done[each.item][sub.id or ""] = done.output
        foreach.advance(step, each)
        state.attempts, state.tries = 0, []
        return await self._save(state, row, named, record, RunStatus.RUNNING, job) not in FINAL

    async def _each_failed(
        self,
        state: RunState,
        step: Step,
        index: int,
        job: Job,
        exc: StepFailed,
        record: dict[str, Any],
        t0: float,
    ) -> bool:
        """A sub-step failed: retried under its policy, skipped past (its
        ``continue_on_error``), or the ``for_each`` step fails with it."""
        assert step.steps is not None
        assert state.each is not None
        each = state.each
        sub = step.steps[each.sub]
        row, named = (
            foreach.row_index(index, each.item, each.sub),
            foreach.named(step, each.item, sub),
        )
        now = self._clock.now()
        delay = self._attempt_failed(state, sub, exc, record, now)
        record["finished_at"] = now
        if delay is not None:
            record["status"] = StepStatus.RETRYING
            retry_at = now + timedelta(seconds=delay)
            await self._save(state, row, named, record, RunStatus.RETRYING, job, retry_at=retry_at)
            return False
        record["duration_ms"] = (self._clock.monotonic() - t0) * 1000
        state.attempts, state.tries = 0, []
        state.failures += 1
        if sub.continue_on_error:
            foreach.advance(step, each)
            return await self._save(state, row, named, record, RunStatus.RUNNING, job) not in FINAL
        if await self._save(state, row, named, record, RunStatus.RUNNING, job) in FINAL:
            return False
        state.failures -= 1  # counted again as the for_each step's failure
        state.each = None
        state.attempts = 1
        traced = foreach.trace_input(step, each)
        failed = StepFailed(f"item {each.item}, step {sub.id}: {exc}", traced_input=traced)
        outer = {"attempts": 1, "started_at": each.started_at}
        return await self._failed(state, step, index, job, failed, outer, t0)

    # -- parallel (engine.run.parallel) ----------------------------------------------------
    async def _parallel(self, state: RunState, step: Step, index: int, job: Job) -> bool:
        """Run a ``parallel`` step's branches at the same time, from where they were, and join
        their outputs; True if the run goes on now."""
        t0 = self._clock.monotonic()
        if state.branches is None:

            def begin(started: datetime) -> Any:
                if not self.steps.passes(state, step):
                    return None
                state.branches = parallel.start(step, started)
                return parallel.trace_input(step)

            opened = await self._open(state, step, index, job, t0, begin)
            if opened is not None:
                return opened
        progress = state.branches
        assert progress is not None
        halt = _Halt()
        async with asyncio.TaskGroup() as branches:
            for number, name in enumerate(parallel.branches(step)):
                where = (index, number, name)
                branches.create_task(self._branch(state, step, where, progress, halt))
        if halt.stopped:  # cancelled: a pending cancellation (or another process's) ends it
            status = await self._save(state, None, None, None, halt.status, job, reason=halt.reason)
            return status not in FINAL
        return await self._join(state, step, index, job, progress, t0)

    async def _join(
        self,
        state: RunState,
        step: Step,
        index: int,
        job: Job,
        progress: ParallelProgress,
        t0: float,
    ) -> bool:
        """Every branch has ended: the step succeeds with their outputs, or fails with the
        first branch that failed."""
        state.branches = None
        failed = parallel.failure(progress)
        record: dict[str, Any] = {"attempts": 1, "started_at": progress.started_at}
        if failed is not None:
            state.attempts = 1
            traced = parallel.trace_input(step)
            exc = StepFailed(f"branch {failed[0]}, {failed[1]}", traced_input=traced)
            return await self._failed(state, step, index, job, exc, record, t0)
        record.update(
            status=StepStatus.SUCCEEDED,
            input=parallel.trace_input(step),
            output=parallel.output(progress),
            finished_at=self._clock.now(),
            duration_ms=(self._clock.monotonic() - t0) * 1000,
        )
        state.outputs[step.id or str(index)] = record["output"]
        return await self._save(state, index, step, record, _advance(state), job) not in FINAL

    async def _branch(
        self,
        state: RunState,
        step: Step,
        where: tuple[int, int, str],
        progress: ParallelProgress,
        halt: _Halt,
    ) -> None:
        """Run one branch's steps in order until it ends, fails, or the step halts (a
        cancellation, or another branch failing with ``fail_fast``) at a step boundary."""
        branch = progress.branches[where[2]]
        subs = parallel.branches(step)[where[2]]
        requests = self._engine.admission.cancel_requests
        while branch.sub < len(subs) and branch.failed is None and not halt.any:
            reason = requests.get(state.run_id)
            if reason is not None and reason is not NEVER_STORED:
                halt.stop(RunStatus.RUNNING, None)  # _save turns it cancelled, with the reason
                return
            await self._branch_step(state, step, where, branch, halt)
            if branch.failed is not None and step.fail_fast:
                halt.any = True

    async def _branch_step(
        self,
        state: RunState,
        step: Step,
        where: tuple[int, int, str],
        branch: BranchProgress,
        halt: _Halt,
    ) -> None:
        """One attempt of a branch's next step, traced in its own row."""
        index, number, name = where
        sub = parallel.branches(step)[name][branch.sub]
        row, named = parallel.row_index(index, number, branch.sub), parallel.named(step, name, sub)
        t0 = self._clock.monotonic()
        branch.attempts += 1
        record: dict[str, Any] = {"attempts": branch.attempts, "started_at": self._clock.now()}
        key = usage_key(state.workspace, record["started_at"], state.event.store, state.recipe_uid)
        if not state.test:
            refused = self._over_limit(state, key, named, row)
            if refused is not None:
                halt.stop(RunStatus.CANCELLED, refused)
                return
            _count_step(self._db.usage, key)
        view = replace(state, attempts=branch.attempts, tries=branch.tries)  # this branch's
        failed: StepFailed | None = None
        try:
            with (
                observe.span("step", step=named.id or "", action=sub.use),
                metering(self._db.usage, key),
            ):
                done = await self.steps.run(
                    view, named, row, lambda n: self._emit(state, n), {"steps": branch.done}
                )
        except Wait:
            failed = StepFailed("a step inside parallel cannot wait")
        except StepFailed as exc:
            failed = exc
        if failed is not None:
            sub_step = (row, named, sub)
            await self._branch_failed(state, view, sub_step, branch, failed, record, halt)
            return
        record.update(
            status=done.outcome,
            input=done.traced_in,
            output=done.traced_out,
            finished_at=self._clock.now(),
            duration_ms=(self._clock.monotonic() - t0) * 1000,
            attempt_log=branch.tries or None,
        )
        if done.output is not None:
            branch.done[sub.id or ""] = done.output
        branch.sub += 1
        branch.attempts, branch.tries = 0, []
        await self._branch_row(state, row, named, record, halt)

    async def _branch_failed(
        self,
        state: RunState,
        view: RunState,
        sub_step: tuple[int, Step, Step],
        branch: BranchProgress,
        exc: StepFailed,
        record: dict[str, Any],
        halt: _Halt,
    ) -> None:
        """A branch's step failed: tried again in the branch after its retry delay (when
        that is short: :data:`~engine.run.parallel.RETRY_IN_BRANCH`), gone past
        (``continue_on_error``), or the branch stops there."""
        row, named, sub = sub_step
        now = self._clock.now()
        delay = self._attempt_failed(view, sub, exc, record, now)
        branch.tries = view.tries
        record["finished_at"] = now
        if delay is not None and delay <= parallel.RETRY_IN_BRANCH:
            record["status"] = StepStatus.RETRYING
            if await self._branch_row(state, row, named, record, halt):
                await self._clock.sleep(delay)
            return
        if delay is not None:
            record["error"] = (
                f"{exc} (its retry in {delay:g}s is later than a step in a parallel branch "
                f"waits: {parallel.RETRY_IN_BRANCH:g}s)"
            )
        branch.attempts, branch.tries = 0, []
        state.failures += 1
        parallel.record_failed(branch, sub, str(record["error"]))
        await self._branch_row(state, row, named, record, halt)

    async def _branch_row(
        self, state: RunState, row: int, named: Step, record: dict[str, Any], halt: _Halt
    ) -> bool:
        """Write a branch step's trace row (the run stays ``running``); False (and the step
        halts) when another process cancelled the run meanwhile (distributed mode)."""
        values = {"status": RunStatus.RUNNING, "next_step": state.next_step}
        traced = step_row(state.run_id, row, named, record)
        shared = not self._engine.admission.enabled
        kept: list[bool] = []

        def write(tx: Tx) -> None:
            kept.clear()
            if shared:
                kept.append(
                    ledger.record_unless_cancelled(tx, state.run_id, values, traced, again=True)
                )
            else:
                ledger.record(tx, state.run_id, values, traced, again=True)

        what = f"saving run {state.run_id}"
        await write_until_done(self._db.writer, write, self._clock.sleep, what)
        self._engine.notify_run(state, RunStatus.RUNNING)
        if kept == [False]:
            halt.stop(RunStatus.RUNNING, None)  # _save finds the cancellation and ends here
            return False
        return True

    # -- waits ----------------------------------------------------------------------------
    async def _begin_wait(
        self, state: RunState, step: Step, index: int, job: Job, wait: Wait, record: dict[str, Any]
    ) -> bool:
        now = self._clock.now()
        info: dict[str, Any] = {
            "until": wait.until.isoformat(),
            "since": now.isoformat(),
            "recheck": wait.recheck,
        }
        if isinstance(wait, approval.Approval):
            info["approval"] = await self._open_approval(state, step, index, wait, now)
        info.update(wait.detail)
        state.wait = {"output": info, "input": wait.traced_input}
        if wait.until <= now:
            return True
        record.update(status=StepStatus.WAITING, input=wait.traced_input, output=info)
        saved = await self._save(
            state, index, step, record, RunStatus.WAITING, job, retry_at=wait.until
        )
        if wait.settle is not None and saved == RunStatus.WAITING:
            await wait.settle()
        return False

    async def _resume_wait(self, state: RunState, step: Step, index: int, job: Job) -> bool:
        assert state.wait is not None
        if "approval" in state.wait["output"]:
            return await self._resume_approval(state, step, index, job)
        info = dict(state.wait["output"])
        until, since = parse_time(info["until"]), parse_time(info.get("since") or info["until"])
        now = self._clock.now()
        if until > now:  # handed out early (a restart, a moved clock): back until then
            await write_until_done(
                self._db.writer,
                lambda tx: self._queue.retry(tx, job, until),
                self._clock.sleep,
                f"putting back job {job.id}",
            )
            return False
        info.pop("recheck", None)
        info["waited_s"] = round((now - since).total_seconds(), 3)
        t0 = self._clock.monotonic()
        state.attempts = max(state.attempts, 1)
        record: dict[str, Any] = {
            "attempts": state.attempts,
            "started_at": since,
            "input": state.wait["input"],
        }
        context: dict[str, Any] | None = None
        if state.wait["output"].get("recheck"):
            try:
                check, event = await self._recheck(state)
            except StepFailed as exc:
                state.attempts += 1
                return await self._failed(state, step, index, job, exc, record, t0)
            info["recheck"] = check.to_dict()
            record.update(status=StepStatus.SUCCEEDED, output=info, finished_at=now)
            if not check.passed:
                state.wait = None
                await self._save(
                    state,
                    index,
                    step,
                    record,
                    RunStatus.SKIPPED,
                    job,
                    reason=f"recheck after the wait: {check.reason}",
                )
                return False
            if event is not None and check.refreshed:
                state.event = event
                context = {"payload": event.payload}
        record.update(status=StepStatus.SUCCEEDED, output=info, finished_at=now, duration_ms=0.0)
        state.wait = None
        state.outputs[step.id or str(index)] = info
        status = _advance(state)
        return (
            await self._save(state, index, step, record, status, job, context=context) not in FINAL
        )

    # -- approvals (engine.run.approval) --------------------------------------------------------
    async def _open_approval(
        self, state: RunState, step: Step, index: int, wait: approval.Approval, now: datetime
    ) -> str:
        step_id = step.id or str(index)
        return await write_until_done(
            self._db.writer,
            lambda tx: approval.open_approval(tx, state, step_id, wait, now),
            self._clock.sleep,
            f"opening the approval of run {state.run_id}",
        )

    async def _resume_approval(self, state: RunState, step: Step, index: int, job: Job) -> bool:
        """Go on with the approval's decision (or its default, past its timeout); while it is
        pending, the job goes back until the timeout."""
        assert state.wait is not None
        info, now = state.wait["output"], self._clock.now()
        ident, until = info["approval"], parse_time(info["until"])
        verdict = await write_until_done(
            self._db.writer,
            lambda tx: approval.settle(tx, ident, now),
            self._clock.sleep,
            f"settling approval {ident}",
        )
        if verdict is None:
            await write_until_done(
                self._db.writer,
                lambda tx: self._queue.retry(tx, job, approval.due(tx, ident, until, now)),
                self._clock.sleep,
                f"putting back job {job.id}",
            )
            return False
        record: dict[str, Any] = {
            "attempts": max(state.attempts, 1),
            "started_at": parse_time(info["since"]),
            "input": state.wait["input"],
            "status": StepStatus.SUCCEEDED,
            "output": verdict.output,
            "finished_at": now,
        }
        state.wait = None
        state.outputs[step.id or str(index)] = verdict.output
        if verdict.stops:
            await self._save(
                state, index, step, record, RunStatus.SKIPPED, job, reason=verdict.reason
            )
            return False
        return await self._save(state, index, step, record, _advance(state), job) not in FINAL

    async def _recheck(self, state: RunState) -> tuple[Recheck, Event | None]:
        try:
            event, refreshed = await refresh(state.event, self._services)
        except RetryableError as exc:
            raise StepFailed(f"recheck: {exc}", retryable=True, kind=kind_of(exc)) from None
        except Exception as exc:
            raise StepFailed(f"recheck: {type(exc).__name__}: {exc}") from None
        if event is None:
            return Recheck(False, refreshed, "the resource no longer exists"), None
        return recheck(state.recipe, self._registry, event), event

    # -- writing ----------------------------------------------------------------------------
    async def _emit(self, state: RunState, new: NewEvent) -> None:
        parent = state.event.caused_by
        chain = (*parent.chain, state.recipe.id) if parent else (state.recipe.id,)
        caused = CausedBy(state.run_id, state.recipe_uid, state.event.depth + 1, chain)
        await self._engine.ingest(
            NewEvent(
                type=new.type,
                payload=new.payload,
                workspace=state.workspace,
                store=new.store if new.store is not None else state.event.store,
                source=new.source if new.source != "api" else "internal",
                dedup_key=new.dedup_key,
                occurred_at=new.occurred_at,
                caused_by=caused,
            )
        )

    def _told(
        self,
        state: RunState,
        step: Step,
        index: int,
        record: dict[str, Any],
        reason: str | None,
        failure: int,
    ) -> tuple[NewEvent, list[NewJob]]:
        """A run failed at ``step``: its ``sous.run.failed`` event, and its alert job when
        alerting is on."""
        error = str(record.get("error") or reason or "")
        notice = failure_notice(state, step, index, error, failure, self._engine.links)
        if not self._engine.alerting:
            return notice, []
        return notice, [NewJob(ALERT_FAILURE, state.run_id, lock_key=alert_lock(state.recipe_uid))]

    async def _save(
        self,
        state: RunState,
        index: int | None,
        step: Step | None,
        record: dict[str, Any] | None,
        run_status: RunStatus,
        job: Job,
        *,
        retry_at: datetime | None = None,
        reason: str | None = None,
        context: dict[str, Any] | None = None,
        failure: int | None = None,
    ) -> RunStatus:
        """Write the step's trace row and the run's new state with the job's fate; returns the
        status written (a pending cancellation turns a going run ``cancelled``). A run failed
        at a step (``failure``: the attempts it made) is written with its ``sous.run.failed``
        event and, when alerting is on, its alert job (:mod:`engine.run.alerts`)."""
        admission = self._engine.admission
        if run_status in GOING:
            asked = admission.cancel_requests.get(state.run_id)
            if asked is not None:
                run_status, reason, retry_at = RunStatus.CANCELLED, asked, None
        now = self._clock.now()
        final = run_status in FINAL
        values, row = _changes(state, index, step, record, run_status, now, retry_at, reason)
        if context is not None:
            values["context"] = {**context, "mode": "test"} if state.test else context
        group: str | None = None
        started: list[NewJob] = []
        if final:
            group, started = admission.depart(state.run_id)
        again = row is not None and (row["attempts"] > 1 or state.resumed or step_is_loop(step))
        notice: NewEvent | None = None
        alert: list[NewJob] = []
        told = failure is not None and not state.test  # a test run's failure alerts nobody
        if told and step is not None and index is not None and record is not None:
            notice, alert = self._told(state, step, index, record, reason, failure or 0)

        # With admission off, the queue is shared by several processes (distributed mode): one
        # of them may have cancelled this run while it was executing here.
        shared = not admission.enabled
        elsewhere: list[bool] = []
        caller = calls.caller_of(state.event)

        def write(tx: Tx) -> None:
            elsewhere.clear()
            if not shared:
                ledger.record(tx, state.run_id, values, row, again=again)
            elif not ledger.record_unless_cancelled(tx, state.run_id, values, row, again=again):
                elsewhere.append(True)  # it ends here, as its cancelling process wrote it
                approval.cancel_pending(tx, [state.run_id], now)
                self._queue.complete(tx, job)
                if caller is not None:
                    self._queue.hasten(tx, "run", caller, now)
                return
            if run_status == RunStatus.CANCELLED:  # one waiting for a decision waits no more
                approval.cancel_pending(tx, [state.run_id], now)
            if final:
                self._queue.complete(tx, job)
                if caller is not None:  # the run that called this one waits for its end
                    self._queue.hasten(tx, "run", caller, now)
                if started or alert:
                    self._queue.enqueue(tx, [*started, *alert])
            elif retry_at is not None:
                self._queue.retry(tx, job, retry_at)

        what = f"saving run {state.run_id}"
        await self._leave(state.run_id, group, started, write, what, notice)
        if elsewhere:
            run_status, final = RunStatus.CANCELLED, True
        if final and admission.cancel_requests:
            admission.cancel_requests.pop(state.run_id, None)
        self._engine.notify_run(state, run_status)
        if run_status == RunStatus.FAILED and not state.test:
            await self._engine.autodisable.run_failed(state.recipe_uid)
        return run_status


def _changes(
    state: RunState,
    index: int | None,
    step: Step | None,
    record: dict[str, Any] | None,
    run_status: RunStatus,
    now: datetime,
    retry_at: datetime | None,
    reason: str | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The run row's new values, and the trace row of the step just attempted (if any)."""
    values: dict[str, Any] = {"status": run_status, "next_step": state.next_step}
    row: dict[str, Any] | None = None
    if record is not None and index is not None and step is not None:
        row = step_row(state.run_id, index, step, record)
        if index == 0 and record["attempts"] == 1:
            values["started_at"] = record.get("started_at")
    if run_status in FINAL:
        values["finished_at"] = now
        values["status_reason"] = reason
    if retry_at is not None:
        values["due_at"] = retry_at
    return values, row


class _Halt:
    """Shared by the branches of a ``parallel`` step: whether they stop at their next step
    (``any``), and whether the run stops too (``stopped``: with the status and reason its
    :meth:`Runner._save` is given)."""

    def __init__(self) -> None:
        self.any = False
        self.stopped = False
        self.status = RunStatus.RUNNING
        self.reason: str | None = None

    def stop(self, status: RunStatus, reason: str | None) -> None:
        self.any = self.stopped = True
        if not (self.reason and reason is None):
            self.status, self.reason = status, reason


def step_is_loop(step: Step | None) -> bool:
    """A ``for_each`` or ``parallel`` step's row was written when it started: later rows
    replace it."""
    return step is not None and step.has_sub_steps()


_METRIC_OF = {"email.send": "emails", "http.request": "http_calls"}


def _count_step(meter: UsageMeter, key: Key) -> None:
    """A step attempted. What it sends (e-mails, HTTP calls, store requests) is counted where
    it is sent, by the connectors (:func:`~engine.store.usage.count_sent`)."""
    meter.add(key, "steps")


MAX_LOGGED = 50
"""Attempts a step's ``attempt_log`` keeps (the first and the latest)."""


def _logged(
    tries: list[dict[str, Any]],
    record: dict[str, Any],
    exc: StepFailed,
    now: datetime,
    retry_in: float | None,
) -> list[dict[str, Any]]:
    """``tries`` with the failed attempt ``record`` added: when it started and ended, its error,
    and the delay before the next attempt (``None``: there is none)."""
    started = record.get("started_at")
    entry = {
        "attempt": record["attempts"],
        "started_at": started.isoformat() if isinstance(started, datetime) else started,
        "finished_at": now.isoformat(),
        "error": str(exc)[:1000],
        "retry_in_s": None if retry_in is None else round(retry_in, 3),
    }
    kept = [*tries, entry]
    return kept if len(kept) <= MAX_LOGGED else [kept[0], *kept[-(MAX_LOGGED - 1) :]]


def _advance(state: RunState) -> RunStatus:
    """The step is done: move on; the run's status after it (ended after its last step)."""
    state.next_step += 1
    state.attempts = 0
    state.tries = []
    if state.next_step < len(state.recipe.actions):
        return RunStatus.RUNNING
    return RunStatus.SUCCEEDED_WITH_ERRORS if state.failures else RunStatus.SUCCEEDED
