"""The distributed job queue: jobs are rows of procrastinate's ``procrastinate_jobs`` table in the
engine's PostgreSQL database, shared by every worker process.

* **Enqueue** calls procrastinate's ``procrastinate_defer_jobs_v1`` on the caller's connection,
  so the jobs commit or roll back with the event, runs and state written beside them: no event
  without its jobs, no job without its event. No outbox is needed.
* **Claim** is procrastinate's fetch (``procrastinate_fetch_job_v2``): the first due ``todo`` job
  whose ``lock`` (the job's ``lock_key``) no other job holds, taken with ``FOR UPDATE SKIP
  LOCKED`` and marked ``doing`` for this process's registered worker id.
* **Complete** and **retry** call ``procrastinate_finish_job_v1`` (deleting the row) and
  ``procrastinate_retry_job_v2`` in the caller's transaction, so a job ends exactly when the
  state it changed is committed.
* **Recovery** follows procrastinate's heartbeats: each process registers a worker and beats
  every ``heartbeat`` seconds; jobs held by a worker silent for ``stalled_after`` seconds (or
  one that unregistered) are put back by :meth:`ProcrastinateJobQueue.recover`, which the queue
  also runs by itself every ``stalled_after`` seconds.

The boundary: this adapter calls procrastinate's SQL functions and its ``JobManager`` directly
(not only its public ``App`` API), so it supports the procrastinate versions it was tested with,
:data:`SUPPORTED` (the dependency is capped to them); :func:`check_version` refuses others, and
:func:`install_schema` refuses a database a newer procrastinate already migrated.
``scripts/procrastinate_upgrade.py`` migrates a database made by an older procrastinate 3 with
jobs in it and runs them afterwards.

Times: due times are kept on the *database's* clock (``scheduled_at = now() + delay``, where
``delay`` is ``due_at`` minus the engine clock's now), so every worker agrees on when a job is
due whatever its own clock says. Heartbeats and polls wait in real time; the wait for the next
delayed job is taken on the engine's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from engine.clock import Clock
from engine.queue.base import Job, NewJob, QueueClosed
from engine.store.db import Database, Tx

log = logging.getLogger("sous.queue")

_DEFER = """
SELECT unnest(procrastinate_defer_jobs_v1(ARRAY(
    SELECT ROW(%(queue)s, j.kind, 0, j.lock, NULL, jsonb_build_object('ref', j.ref),
               now() + make_interval(secs => j.delay))::procrastinate_job_to_defer_v1
    FROM unnest(%(kinds)s::varchar[], %(refs)s::text[], %(locks)s::text[], %(delays)s::float8[])
         WITH ORDINALITY AS j(kind, ref, lock, delay, n)
    ORDER BY j.n
)))"""
# Both take the row lock first and skip a job that is gone or already put back (a duplicate
# delivery finishing late), so that the caller's state write still commits.
_FINISH = """
SELECT procrastinate_finish_job_v1(j.id, 'succeeded', true) FROM (
    SELECT id FROM procrastinate_jobs WHERE id = %(id)s AND status IN ('todo', 'doing') FOR UPDATE
) AS j"""
_RETRY = """
SELECT procrastinate_retry_job_v2(j.id, now() + make_interval(secs => %(delay)s), NULL, NULL, NULL)
FROM (SELECT id FROM procrastinate_jobs WHERE id = %(id)s AND status = 'doing' FOR UPDATE) AS j"""
_HASTEN = """
UPDATE procrastinate_jobs SET scheduled_at = now() + make_interval(secs => %(delay)s)
WHERE queue_name = %(queue)s AND task_name = %(kind)s AND args->>'ref' = %(ref)s
  AND status = 'todo' AND scheduled_at > now() + make_interval(secs => %(delay)s)"""
_NOTIFY = "SELECT pg_notify(%(channel)s, %(payload)s)"
_COUNTS = """
SELECT count(*) FILTER (WHERE scheduled_at IS NULL OR scheduled_at <= now()), count(*)
FROM procrastinate_jobs WHERE queue_name = :queue AND status = 'todo'"""
_NEXT_DUE = """
SELECT extract(epoch FROM min(scheduled_at) - now())::float8 FROM procrastinate_jobs
WHERE queue_name = %(queue)s AND status = 'todo' AND scheduled_at > now()"""


SUPPORTED = ((3, 10, 0), (3, 11, 0))
"""procrastinate versions this adapter works with: from the first, up to (not including) the
second. Its SQL functions (``procrastinate_defer_jobs_v1``, ``procrastinate_fetch_job_v2``,
``procrastinate_finish_job_v1``, ``procrastinate_retry_job_v2``) and ``JobManager`` are called
directly."""


def check_version(found: str | None = None) -> str:
    """The installed procrastinate's version; :class:`RuntimeError` if it is not supported."""
    if found is None:
        from procrastinate import __version__

        found = str(__version__)
    low, high = SUPPORTED
    if not low <= _version(found) < high:
        raise RuntimeError(
            f"procrastinate {found} is installed; Sous's distributed queue calls procrastinate's "
            f"job functions directly and supports {_dotted(low)} up to (not including) "
            f"{_dotted(high)}: pip install 'procrastinate>={_dotted(low)},<{_dotted(high)}'"
        )
    return found


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


@dataclass(frozen=True)
class QueueTuning:
    """Times are real seconds."""

    queue_name: str = "sous"
    heartbeat: float = 10.0
    """Seconds between this process's heartbeats."""
    stalled_after: float = 30.0
    """A worker without a heartbeat for this long is dead; its jobs go back to the queue."""
    poll: float = 2.0
    """Longest wait between two fetches when no notification arrives."""
    fetchers: int = 4
    """Fetch queries one process runs at once."""
    hints: int = 10_000
    """In-process hints kept for jobs this process enqueued (see :attr:`NewJob.hint`)."""


def conninfo(db: Database) -> str:
    """The libpq connection string of an SQLAlchemy PostgreSQL URL."""
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class ProcrastinateJobQueue:
    def __init__(self, db: Database, clock: Clock, tuning: QueueTuning | None = None) -> None:
        if db.is_sqlite:
            raise ValueError("the procrastinate queue needs PostgreSQL (SOUS_DATABASE_URL)")
        check_version()
        self._db = db
        self._clock = clock
        self.tuning = tuning or QueueTuning()
        self._channel = f"procrastinate_queue_v1#{self.tuning.queue_name}"
        self._hints: OrderedDict[str, Any] = OrderedDict()
        self._manager: Any = None
        self._connector: Any = None
        self.worker_id: int | None = None
        self._start_lock: asyncio.Lock | None = None
        self._slots: asyncio.Semaphore | None = None
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._generation = 0
        self._next_due: tuple[float, asyncio.Task[float | None]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.claimed = 0
        self.last_beat: float | None = None
        """``time.monotonic()`` of this process's last heartbeat that reached the database."""

    # -- contract -------------------------------------------------------------------------
    def enqueue(self, tx: Tx, jobs: Sequence[NewJob]) -> list[str]:
        if not jobs:
            return []
        now = self._clock.now()
        delays = [_delay(j.due_at, now) if j.due_at else None for j in jobs]
        params = {
            "queue": self.tuning.queue_name,
            "kinds": [j.kind for j in jobs],
            "refs": [j.ref for j in jobs],
            "locks": [j.lock_key for j in jobs],
            "delays": [d if d else None for d in delays],
        }
        rows = _raw(tx).execute(_DEFER, params).fetchall()
        ids = [str(i) for i in sorted(r[0] for r in rows)]  # ids are handed out in row order
        hinted = [(i, j.hint) for i, j in zip(ids, jobs, strict=True) if j.hint is not None]
        if hinted:
            tx.after_commit(lambda: self._remember(hinted))
        if any(delays):
            tx.after_commit(self._delayed)
        else:
            tx.after_commit(lambda: self._bump(len(ids)))
        return ids

    async def get(self) -> Job:
        while True:
            if self._closed:
                raise QueueClosed
            seen = self._generation
            try:
                await self._ensure_started()
                assert self._slots is not None
                async with self._slots:
                    job = None if self._closed else await self._fetch()
            except (asyncio.CancelledError, QueueClosed):
                raise
            except Exception as exc:
                log.warning("fetching a job failed (%s); trying again", exc)
                await asyncio.sleep(self.tuning.poll)
                continue
            if job is not None:
                return job
            await self._wait(seen)

    def complete(self, tx: Tx, job: Job) -> None:
        raw = _raw(tx)
        raw.execute(_FINISH, {"id": int(job.id)})
        self._released(tx, job)

    def retry(self, tx: Tx, job: Job, due_at: datetime) -> None:
        _raw(tx).execute(_RETRY, {"id": int(job.id), "delay": _delay(due_at, self._clock.now())})
        job.attempts += 1
        job.due_at = due_at
        self._released(tx, job)
        tx.after_commit(self._delayed)

    def hasten(self, tx: Tx, kind: str, ref: str, due_at: datetime) -> None:
        delay = _delay(due_at, self._clock.now())
        params = {"queue": self.tuning.queue_name, "kind": kind, "ref": ref, "delay": delay}
        _raw(tx).execute(_HASTEN, params)
        payload = json.dumps({"type": "job_inserted", "job_id": 0})
        _raw(tx).execute(_NOTIFY, {"channel": self._channel, "payload": payload})
        tx.after_commit(self._delayed)

    async def recover(self) -> int:
        """Put back the jobs of workers without a recent heartbeat (never this one's)."""
        await self._ensure_started()
        seconds = self.tuning.stalled_after
        await self._manager.prune_stalled_workers(seconds)
        stalled = await self._manager.get_stalled_jobs(
            queue=self.tuning.queue_name, seconds_since_heartbeat=seconds
        )
        count = 0
        for found in stalled:
            if found.worker_id is not None and found.worker_id == self.worker_id:
                continue
            try:
                await self._manager.retry_job(found)
            except Exception as exc:  # finished or recovered by someone else meanwhile
                log.debug("job %s was not put back: %s", found.id, exc)
                continue
            count += 1
        if count:
            log.warning("put back %d job(s) of stopped workers", count)
            self._bump(count)
        return count

    def beating(self) -> bool:
        """Whether this process's heartbeats reach the database (the last one is younger than
        ``stalled_after``, after which other workers take its jobs back)."""
        last = self.last_beat
        return last is not None and time.monotonic() - last < self.tuning.stalled_after

    def depth(self) -> int:
        return self._counts()[1]

    def due(self) -> int:
        return self._counts()[0]

    async def close(self) -> None:
        self._closed = True
        while self._waiters:
            self._wake_one()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # A listener cancelled mid-query may swallow the cancellation and reconnect: do not
            # let it hold up the shutdown.
            _, stuck = await asyncio.wait(self._tasks, timeout=5)
            for task in stuck:
                task.cancel()
        self._tasks.clear()
        if self._connector is not None:
            if self.worker_id is not None:
                # Jobs still held become recoverable at once instead of after stalled_after.
                with contextlib.suppress(Exception):
                    await self._manager.unregister_worker(self.worker_id)
            with contextlib.suppress(Exception):
                await self._connector.close_async()
            self._connector = None

    # -- procrastinate's side -------------------------------------------------------------
    async def defer_periodic(
        self, kind: str, ref: str, periodic_id: str, timestamp: int
    ) -> str | None:
        """Defer one firing of a periodic job through procrastinate's periodic defers: the
        first caller for (``kind``, ``periodic_id``, ``timestamp``) creates the job and gets its
        id, every later caller (any process) gets ``None``."""
        from procrastinate import jobs

        await self._ensure_started()
        job = jobs.Job(
            id=None,
            queue=self.tuning.queue_name,
            lock=None,
            queueing_lock=None,
            task_name=kind,
            task_kwargs={"ref": ref, "timestamp": timestamp},
        )
        found = await self._manager.defer_periodic_job(job, periodic_id, timestamp)
        return None if found is None else str(found)

    async def _ensure_started(self) -> None:
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
            self._slots = asyncio.Semaphore(self.tuning.fetchers)
        async with self._start_lock:
            if self._connector is not None:
                return
            if self._closed:
                raise QueueClosed
            from procrastinate import PsycopgConnector
            from procrastinate.manager import JobManager

            connector = PsycopgConnector(
                conninfo=conninfo(self._db), min_size=1, max_size=self.tuning.fetchers + 2
            )
            await connector.open_async()
            self._manager = JobManager(connector)
            self.worker_id = await self._manager.register_worker()
            self.last_beat = time.monotonic()
            self._connector = connector
            for name, loop in (("listen", self._listen), ("beat", self._beat)):
                task = asyncio.get_running_loop().create_task(loop(), name=f"sous-queue-{name}")
                self._tasks.append(task)

    async def _fetch(self) -> Job | None:
        try:
            found = await self._manager.fetch_job([self.tuning.queue_name], self.worker_id)
        except Exception as exc:
            if "procrastinate_jobs_worker_id_fkey" not in str(exc.__cause__ or exc):
                raise
            # Taken for dead and pruned (a long pause): register again under a new id.
            self.worker_id = await self._manager.register_worker()
            log.warning("this worker was pruned as stalled; registered again as %s", self.worker_id)
            return await self._fetch()
        if found is None:
            return None
        now = self._clock.now()
        scheduled = found.scheduled_at
        job_id = str(found.id)
        self.claimed += 1
        hint = self._hints.pop(job_id, None)
        if found.attempts:
            # Handed out before (to a worker that died, or retried): the state this process
            # built at enqueue time may be behind what that worker committed. Read it afresh.
            hint = None
        return Job(
            id=job_id,
            kind=found.task_name,
            ref=str(found.task_kwargs.get("ref", "")),
            due_at=now if scheduled is None else min(now, scheduled),
            lock_key=found.lock,
            attempts=found.attempts,
            hint=hint,
        )

    async def _wait(self, seen: int) -> None:
        """Return once something may have changed since generation ``seen``: a job was
        inserted or released (one idle caller is woken per change, not all of them), the next
        delayed job fell due, or ``poll`` seconds passed."""
        if self._generation != seen or self._closed:
            return
        delay: float | None = None
        with contextlib.suppress(Exception):
            delay = await self._next_due_in()
        if self._generation != seen or self._closed:
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(woken)
        timers = [asyncio.ensure_future(asyncio.sleep(self.tuning.poll))]
        if delay is not None:
            timers.append(asyncio.ensure_future(self._clock.sleep(delay)))
        try:
            await asyncio.wait([woken, *timers], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for timer in timers:
                timer.cancel()
            for timer in timers:
                with contextlib.suppress(asyncio.CancelledError):
                    await timer
            if not woken.done():
                woken.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(woken)

    async def _next_due_in(self) -> float | None:
        """Seconds (on the engine's clock) until the earliest delayed job is due. Asked of the
        database at most once per ``poll`` seconds, and again after this process delays a job."""
        for _ in range(2):
            cached = self._next_due
            if cached is None or cached[0] <= time.monotonic():
                task = asyncio.ensure_future(self._due_at())
                cached = self._next_due = (time.monotonic() + self.tuning.poll, task)
            due = await asyncio.shield(cached[1])
            if due is None:
                return None
            remaining = due - self._clock.monotonic()
            if remaining > 0:
                return remaining
            self._next_due = None  # it fell due (and someone took it): ask again
        return None

    async def _due_at(self) -> float | None:
        delay = await self._query_next_due()
        return None if delay is None else self._clock.monotonic() + delay

    async def _query_next_due(self) -> float | None:
        async with self._connector.pool.connection() as conn:
            cur = await conn.execute(_NEXT_DUE, {"queue": self.tuning.queue_name})
            row = await cur.fetchone()
        return None if row is None or row[0] is None else max(0.0, float(row[0]))

    async def _listen(self) -> None:
        async def woken(*, channel: str, notification: Any) -> None:
            self._bump()

        while True:
            try:
                await self._manager.listen_for_jobs(
                    on_notification=woken, queues=[self.tuning.queue_name]
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("listening for new jobs failed (%s); polling meanwhile", exc)
            await asyncio.sleep(self.tuning.poll)

    async def _beat(self) -> None:
        """Heartbeats, and recovery of dead workers' jobs every ``stalled_after`` seconds."""
        since_recover = 0.0
        while True:
            await asyncio.sleep(self.tuning.heartbeat)
            since_recover += self.tuning.heartbeat
            try:
                await self._manager.update_heartbeat(self.worker_id)
                self.last_beat = time.monotonic()
                if since_recover >= self.tuning.stalled_after:
                    since_recover = 0.0
                    await self.recover()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("queue heartbeat failed: %s", exc)

    # -- helpers --------------------------------------------------------------------------
    def _released(self, tx: Tx, job: Job) -> None:
        if job.lock_key is not None:  # wake other processes waiting for this key
            payload = json.dumps({"type": "lock_released", "job_id": int(job.id)})
            _raw(tx).execute(_NOTIFY, {"channel": self._channel, "payload": payload})
        tx.after_commit(self._bump)

    def _bump(self, jobs: int = 1) -> None:
        """Something changed that may let ``jobs`` jobs out: wake that many idle callers."""
        self._generation += 1
        for _ in range(jobs):
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _delayed(self) -> None:
        """A job was delayed here: the next due time must be asked for again."""
        self._next_due = None
        self._bump()

    def _remember(self, hinted: list[tuple[str, Any]]) -> None:
        for job_id, hint in hinted:
            self._hints[job_id] = hint
        while len(self._hints) > self.tuning.hints:
            self._hints.popitem(last=False)

    def _counts(self) -> tuple[int, int]:
        with self._db.engine.connect() as conn:
            row = conn.execute(text(_COUNTS), {"queue": self.tuning.queue_name}).one()
        return int(row[0]), int(row[1])


def _raw(tx: Tx) -> Any:
    raw = tx.conn.connection.driver_connection
    assert raw is not None
    return raw


def _delay(due_at: datetime, now: datetime) -> float:
    return max(0.0, (due_at - now).total_seconds())


# -- schema -------------------------------------------------------------------------------
def install_schema(engine: Engine) -> str:
    """Create procrastinate's tables and functions, or bring them to the installed
    procrastinate's version with its migration files; return what was done. Safe to run from
    several processes at once (an advisory lock serialises them) and to run again."""
    from procrastinate.schema import SchemaManager

    installed = check_version()
    target = _version(installed)
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("SELECT pg_advisory_xact_lock(hashtext('sous:procrastinate-schema'))")
        raw.execute(
            "CREATE TABLE IF NOT EXISTS sous_procrastinate_schema "
            "(version text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        recorded = raw.execute(
            "SELECT version FROM sous_procrastinate_schema ORDER BY applied_at DESC LIMIT 1"
        ).fetchone()
        exists = raw.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0]
        if exists is None:
            raw.execute(SchemaManager.get_schema())
            done = f"procrastinate {installed} schema created"
        elif recorded is None:
            done = f"procrastinate schema found; recorded as {installed}"
        elif _version(recorded[0]) > target:
            raise RuntimeError(
                f"the database's procrastinate schema is at {recorded[0]}, newer than the "
                f"installed procrastinate {installed}: run this Sous with the newer version"
            )
        elif _version(recorded[0]) == target:
            return f"procrastinate schema is at {recorded[0]}"
        else:
            steps = _migrations(_version(recorded[0]), target)
            for path in steps:
                raw.execute(path.read_text(encoding="utf-8"))
            done = (
                f"procrastinate schema migrated: {recorded[0]} to {installed}, {len(steps)} files"
            )
        raw.execute("INSERT INTO sous_procrastinate_schema (version) VALUES (%s)", (installed,))
    return done


def _version(value: str) -> tuple[int, ...]:
    return tuple(int(p) for p in value.split("+")[0].split(".")[:3] if p.isdigit())


def _migrations(after: tuple[int, ...], upto: tuple[int, ...]) -> list[Any]:
    from pathlib import Path

    from procrastinate.schema import SchemaManager

    folder = Path(SchemaManager.get_migrations_path())
    found = []
    for path in sorted(folder.glob("*.sql")):
        version = _version(path.name.split("_")[0])
        if after < version <= upto:
            found.append(path)
    return found
