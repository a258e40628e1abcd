"""A job's fate after its handler: done, or back to the queue to run again later.

One rule for every kind of job, the engine's and the connectors': a job whose work failed for a
reason that may pass (a :class:`~engine.errors.RetryableError`, or anything unexpected) goes back
to the queue with a growing delay (:func:`backoff`, or the ``defer`` a
:class:`~engine.errors.Retry` asks for) until its attempts are used up; a
:class:`~engine.errors.PermanentError` never runs again. Every write here outlasts a passing
database fault (:func:`~engine.store.db.write_until_done`), so a job is never left claimed until a
restart.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from engine.clock import Clock
from engine.errors import PermanentError, Retry
from engine.queue.base import Job, JobQueue
from engine.store.db import Database, write_until_done

log = logging.getLogger("sous.engine")

LONGEST_DELAY = 300.0


def backoff(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: 2, 4, 8, … up to five minutes."""
    return min(LONGEST_DELAY, 2.0 * 2.0 ** min(attempts, 10))


def retry_delay(job: Job, exc: BaseException, max_attempts: int) -> float | None:
    """How long before ``job`` runs again after ``exc``; ``None`` when it must not (the error
    is permanent, or this was its last attempt)."""
    if isinstance(exc, PermanentError) or job.attempts + 1 >= max_attempts:
        return None
    return exc.defer if isinstance(exc, Retry) else backoff(job.attempts)


async def put_back(
    db: Database, queue: JobQueue, clock: Clock, job: Job, delay: float | None = None
) -> None:
    """Hand ``job`` back to the queue, due in ``delay`` seconds (default :func:`backoff`): a
    worker whose handler failed must not keep its job, nor the lock key it holds."""
    due = clock.now() + timedelta(seconds=backoff(job.attempts) if delay is None else delay)
    try:
        await write_until_done(
            db.writer,
            lambda tx: queue.retry(tx, job, due),
            clock.sleep,
            f"putting back job {job.id}",
        )
    except Exception:
        log.exception("job %s could not be put back; it runs again after a restart", job.id)


async def complete(db: Database, queue: JobQueue, clock: Clock, job: Job) -> None:
    """Mark ``job`` done (it is deleted and its lock key released)."""
    await write_until_done(
        db.writer, lambda tx: queue.complete(tx, job), clock.sleep, f"completing job {job.id}"
    )
