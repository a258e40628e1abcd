"""The engine's workers: they take jobs from the queue and run them, run jobs through the
runner and other kinds through the handlers connectors register (:meth:`WorkerPool.handle`).

A job whose handler raises goes back to the queue with a growing delay
(:func:`engine.recovery.put_back`): a worker that fails must not keep its job, nor the lock key
the job holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from engine.clock import Clock
from engine.contracts import JobHandler
from engine.db import Database, Tx, write_until_done
from engine.leader import Leadership
from engine.queue.base import Job, JobQueue, QueueClosed
from engine.recovery import put_back

if TYPE_CHECKING:
    from engine.runner import Runner

log = logging.getLogger("sous.engine")

class WorkerPool:
    """The worker half of :class:`~engine.engine.Engine`."""

    db: Database
    clock: Clock
    queue: JobQueue
    runner: Runner
    _workers: list[asyncio.Task[None]]
    _handlers: dict[str, tuple[JobHandler, asyncio.Semaphore]]
    _side_tasks: set[asyncio.Task[None]]
    leadership: Leadership
    _idle: asyncio.Event
    _room: asyncio.Event
    _busy: int
    backlog: int | None

    def handle(self, kind: str, handler: JobHandler, concurrency: int = 64) -> None:
        """Run jobs of ``kind`` with ``handler``, up to ``concurrency`` at once, beside the run
        workers (a handler must complete or retry its job through the queue)."""
        self._handlers[kind] = (handler, asyncio.Semaphore(concurrency))

    async def stop(self) -> None:
        self.leadership.close()
        await self.queue.close()
        for task in [*self._workers, *self._side_tasks]:
            task.cancel()
        for task in [*self._workers, *self._side_tasks]:
            with contextlib.suppress(asyncio.CancelledError, QueueClosed):
                await task
        self._workers.clear()

    async def _work(self) -> None:
        while True:
            try:
                job = await self.queue.get()
            except QueueClosed:
                return
            if (
                self.backlog is not None
                and not self._room.is_set()
                and self.queue.due() <= self.backlog
            ):
                self._room.set()  # senders held back by Engine.receive may go on
            self._busy += 1
            self._idle.clear()
            if job.kind in self._handlers:
                handler, limit = self._handlers[job.kind]
                await limit.acquire()
                task = asyncio.create_task(self._side(job, handler, limit))
                self._side_tasks.add(task)
                task.add_done_callback(self._side_tasks.discard)
                continue
            try:
                if job.kind == "run":
                    await self.runner.execute(job)
                else:
                    log.error("unknown job kind %r; dropping job %s", job.kind, job.id)
                    await self._complete(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s failed unexpectedly; it goes back to the queue", job.id)
                await put_back(self.db, self.queue, self.clock, job)
            finally:
                self._done_one()

    async def _complete(self, job: Job) -> None:
        def write(tx: Tx) -> None:
            self.queue.complete(tx, job)

        await write_until_done(self.db.writer, write, self.clock.sleep, f"completing job {job.id}")

    async def _side(self, job: Job, handler: JobHandler, limit: asyncio.Semaphore) -> None:
        try:
            await handler(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "job %s (%s) failed unexpectedly; it goes back to the queue", job.id, job.kind
            )
            await put_back(self.db, self.queue, self.clock, job)
        finally:
            limit.release()
            self._done_one()

    def _done_one(self) -> None:
        self._busy -= 1
        if self._busy == 0 and self.queue.due() == 0:
            self._idle.set()

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until no job is due or running (tests and the demo); delayed jobs may remain."""

        async def wait() -> None:
            while self.queue.due() or self._busy:
                self._idle.clear()
                await self._idle.wait()

        await asyncio.wait_for(wait(), timeout)
