"""The embedded job queue: jobs are rows in the engine's own database, handed out in-process.

One process owns the queue (the embedded mode), so claims live in memory: a job row exists
from enqueue until completion, and at start-up :meth:`SqlJobQueue.recover` loads every row
back into memory — jobs of a crashed process run again, none is lost. Called again later, it
loads only rows it does not know, leaving alone jobs a worker of this process holds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update

from engine.clock import Clock
from engine.model.ids import new_id
from engine.queue.base import Job, NewJob, QueueClosed
from engine.store.db import Database, Tx
from engine.store.models import JobRow

_T = JobRow.__table__  # type: ignore[attr-defined]


class SqlJobQueue:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._ready: deque[Job] = deque()
        self._delayed: list[tuple[datetime, int, Job]] = []
        self._seq = itertools.count()
        self._locked: dict[str, deque[Job]] = {}
        self._held: set[str] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timer: asyncio.Task[None] | None = None
        self._timer_due: datetime | None = None
        self._closed = False
        self._claimed = 0
        self._inflight: set[str] = set()

    # -- contract -------------------------------------------------------------------------
    def enqueue(self, tx: Tx, jobs: Sequence[NewJob]) -> list[str]:
        now = self._clock.now()
        made = [
            Job(new_id("job"), j.kind, j.ref, j.due_at or now, j.lock_key, 0, j.hint) for j in jobs
        ]
        if made:
            tx.insert(
                _T,
                [
                    {
                        "id": j.id,
                        "kind": j.kind,
                        "ref": j.ref,
                        "lock_key": j.lock_key,
                        "status": "queued",
                        "attempts": 0,
                        "due_at": j.due_at,
                        "created_at": now,
                    }
                    for j in made
                ],
            )
            tx.after_commit(lambda: self._offer(made))
        return [j.id for j in made]

    async def get(self) -> Job:
        while True:
            if self._closed:
                raise QueueClosed
            self._promote_due()
            if self._ready:
                job = self._ready.popleft()
                self._claimed += 1
                self._inflight.add(job.id)
                if job.lock_key is not None:
                    self._held.add(job.lock_key)
                return job
            self._arm_timer()
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()

    def complete(self, tx: Tx, job: Job) -> None:
        tx.delete(_T, {"id": job.id})
        tx.after_commit(lambda: self._release(job))

    def retry(self, tx: Tx, job: Job, due_at: datetime) -> None:
        job.attempts += 1
        job.due_at = due_at
        tx.update(_T, {"id": job.id}, {"due_at": due_at, "attempts": job.attempts})

        def back() -> None:
            self._release(job)
            self._offer([job])

        tx.after_commit(back)

    def hasten(self, tx: Tx, kind: str, ref: str, due_at: datetime) -> None:
        tx.conn.execute(
            update(_T)
            .where(_T.c.kind == kind, _T.c.ref == ref, _T.c.due_at > due_at)
            .values(due_at=due_at)
        )

        def sooner() -> None:
            found = [e for e in self._delayed if e[2].kind == kind and e[2].ref == ref]
            if not found:
                return
            self._delayed = [e for e in self._delayed if e not in found]
            heapq.heapify(self._delayed)
            for *_, job in found:
                job.due_at = min(job.due_at, due_at)
            self._offer([job for *_, job in found])

        tx.after_commit(sooner)

    async def recover(self) -> int:
        def load(tx: Tx) -> list[Job]:
            rows = tx.conn.execute(select(_T).order_by(_T.c.due_at, _T.c.id)).all()
            return [Job(r.id, r.kind, r.ref, r.due_at, r.lock_key, r.attempts) for r in rows]

        jobs = self._db.read_sync(load)
        known = {j.id for j in self._ready} | {j.id for *_, j in self._delayed}
        known |= {j.id for q in self._locked.values() for j in q} | self._inflight
        fresh = [j for j in jobs if j.id not in known]
        for job in fresh:
            if job.due_at.tzinfo is None:
                from datetime import UTC

                job.due_at = job.due_at.replace(tzinfo=UTC)
        self._offer(fresh)
        return len(fresh)

    def depth(self) -> int:
        locked = sum(len(q) for q in self._locked.values())
        return len(self._ready) + len(self._delayed) + locked

    def due(self) -> int:
        self._promote_due()
        return len(self._ready)

    @property
    def claimed(self) -> int:
        return self._claimed

    async def close(self) -> None:
        self._closed = True
        if self._timer:
            self._timer.cancel()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(QueueClosed())

    # -- in-memory scheduling ---------------------------------------------------------------
    def _offer(self, jobs: Sequence[Job]) -> None:
        now = self._clock.now()
        for job in jobs:
            if job.due_at > now:
                heapq.heappush(self._delayed, (job.due_at, next(self._seq), job))
            elif job.lock_key is not None and (
                job.lock_key in self._held or self._locked.get(job.lock_key)
            ):
                self._locked.setdefault(job.lock_key, deque()).append(job)
            else:
                self._ready.append(job)
                if job.lock_key is not None:
                    # Reserve the key until this job is claimed and finished.
                    self._held.add(job.lock_key)
        self._wake()
        if self._delayed:
            self._arm_timer()

    def _release(self, job: Job) -> None:
        self._claimed -= 1
        self._inflight.discard(job.id)
        key = job.lock_key
        if key is None:
            return
        self._held.discard(key)
        waiting = self._locked.get(key)
        if waiting:
            nxt = waiting.popleft()
            if not waiting:
                del self._locked[key]
            self._held.add(key)
            self._ready.append(nxt)
            self._wake()

    def _promote_due(self) -> None:
        now = self._clock.now()
        due: list[Job] = []
        while self._delayed and self._delayed[0][0] <= now:
            due.append(heapq.heappop(self._delayed)[2])
        if due:
            for job in due:
                job.due_at = min(job.due_at, now)
            self._offer(due)

    def _wake(self) -> None:
        while self._waiters and (self._ready or not self._waiters[0].done()):
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not self._ready:
                    break

    def _arm_timer(self) -> None:
        if not self._delayed:
            return
        first = self._delayed[0][0]
        if self._timer and not self._timer.done() and self._timer_due and self._timer_due <= first:
            return
        if self._timer and not self._timer.done():
            self._timer.cancel()
        self._timer_due = first
        self._timer = asyncio.get_running_loop().create_task(self._tick(first))

    async def _tick(self, due: datetime) -> None:
        await self._clock.sleep((due - self._clock.now()).total_seconds())
        self._promote_due()
        self._wake()
