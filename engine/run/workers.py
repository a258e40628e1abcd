"""The engine's workers: they take jobs from the queue and run them, run jobs through the
runner and other kinds through the handlers connectors register (:meth:`WorkerPool.handle`).

A job whose handler raises goes back to the queue with a growing delay
(:func:`engine.run.jobs.put_back`): a worker that fails must not keep its job, nor the lock key
the job holds.

Backpressure lives here too: :meth:`WorkerPool.hold` lets a sender wait while more jobs than the
backlog wait for a worker, and a worker that takes a job lets it go on once they drop to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from engine.clock import Clock
from engine.contracts import JobHandler
from engine.queue.base import Job, JobQueue, QueueClosed
from engine.run.jobs import complete, put_back
from engine.store.db import Database

log = logging.getLogger("sous.engine")

RunJob = Callable[[Job], Awaitable[None]]


class WorkerPool:
    """Workers over one queue: run jobs go to ``run``, other kinds to their handlers."""

    def __init__(
        self, db: Database, clock: Clock, queue: JobQueue, run: RunJob, backlog: int | None
    ) -> None:
        self._db, self._clock, self._queue, self._run = db, clock, queue, run
        self.backlog = backlog
        """Jobs that may wait for a worker before :meth:`hold` makes senders wait (``None``:
        never: other processes' workers drain the queue)."""
        self._workers: list[asyncio.Task[None]] = []
        self._handlers: dict[str, tuple[JobHandler, asyncio.Semaphore]] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._room = asyncio.Event()
        self._busy = 0

    @property
    def busy(self) -> int:
        """Jobs a worker of this pool is running now."""
        return self._busy

    def handle(self, kind: str, handler: JobHandler, concurrency: int = 64) -> None:
        """Run jobs of ``kind`` with ``handler``, up to ``concurrency`` at once, beside the run
        workers (a handler must complete or retry its job through the queue)."""
        self._handlers[kind] = (handler, asyncio.Semaphore(concurrency))

    def start(self, count: int) -> None:
        for n in range(count):
            self._workers.append(asyncio.create_task(self._work(), name=f"sous-worker-{n}"))

    def spawn(self, work: Awaitable[None]) -> None:
        """Run ``work`` beside the workers (its failure is logged); stopped with them."""

        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("background engine work failed")

        self._track(asyncio.create_task(guarded()))

    async def hold(self, longest: float) -> bool:
        """Wait, up to ``longest`` seconds, while more jobs than the backlog wait for a worker;
        returns whether the caller was held at all."""
        if self.backlog is None or self._queue.due() <= self.backlog:
            return False
        self._room.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), longest)
        return True

    async def stop(self) -> None:
        await self._queue.close()
        for task in [*self._workers, *self._side_tasks]:
            task.cancel()
        for task in [*self._workers, *self._side_tasks]:
            with contextlib.suppress(asyncio.CancelledError, QueueClosed):
                await task
        self._workers.clear()

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until no job is due or running (tests and the demo); delayed jobs may remain."""

        async def wait() -> None:
            while self._queue.due() or self._busy:
                self._idle.clear()
                await self._idle.wait()

        await asyncio.wait_for(wait(), timeout)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _work(self) -> None:
        while True:
            try:
                job = await self._queue.get()
            except QueueClosed:
                return
            backlog = self.backlog
            if backlog is not None and not self._room.is_set() and self._queue.due() <= backlog:
                self._room.set()  # senders held back by hold() may go on
            self._busy += 1
            self._idle.clear()
            if job.kind in self._handlers:
                handler, limit = self._handlers[job.kind]
                await limit.acquire()
                self._track(asyncio.create_task(self._side(job, handler, limit)))
                continue
            try:
                if job.kind == "run":
                    await self._run(job)
                else:
                    log.error("unknown job kind %r; dropping job %s", job.kind, job.id)
                    await complete(self._db, self._queue, self._clock, job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s failed unexpectedly; it goes back to the queue", job.id)
                await put_back(self._db, self._queue, self._clock, job)
            finally:
                self._done_one()

    async def _side(self, job: Job, handler: JobHandler, limit: asyncio.Semaphore) -> None:
        try:
            await handler(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "job %s (%s) failed unexpectedly; it goes back to the queue", job.id, job.kind
            )
            await put_back(self._db, self._queue, self._clock, job)
        finally:
            limit.release()
            self._done_one()

    def _done_one(self) -> None:
        self._busy -= 1
        if self._busy == 0 and self._queue.due() == 0:
            self._idle.set()
