"""The job queue contract. Its docstrings are the spec every implementation is tested against
(``tests/engine/test_queue_contract.py`` runs one suite over each implementation).

A job is a small pointer (``kind`` + ``ref``, e.g. ``run`` + a run id); the state it points at
lives in the database. Delivery is at-least-once: a job is handed out again if its worker died
before completing it, so what a job does must be safe to repeat (runs resume from their last
completed step and actions carry idempotency keys).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from engine.store.db import Tx


@dataclass(frozen=True)
class NewJob:
    kind: str
    ref: str
    due_at: datetime | None = None
    lock_key: str | None = None
    """Jobs with the same lock key never run at the same time; they run in due order."""
    hint: Any = None
    """An in-process cache of what the job needs (not stored); workers must cope without it."""


@dataclass
class Job:
    id: str
    kind: str
    ref: str
    due_at: datetime
    lock_key: str | None = None
    attempts: int = 0
    hint: Any = field(default=None, compare=False)


class JobQueue(Protocol):
    def enqueue(self, tx: Tx, jobs: Sequence[NewJob]) -> list[str]:
        """Add jobs inside the caller's transaction; return their ids.

        The jobs become visible to workers only once ``tx`` commits, and vanish with it if it
        rolls back. A job without ``due_at`` is due at once.
        """
        ...

    async def get(self) -> Job:
        """Wait for a due job whose lock key is free, claim it for this worker and return it.

        A claimed job is not handed to anyone else until it is completed, retried, or its
        worker is found dead (see :meth:`recover`). Due jobs come out in due order.
        """
        ...

    def complete(self, tx: Tx, job: Job) -> None:
        """Remove a claimed job, inside the caller's transaction (with the state it changed)."""
        ...

    def retry(self, tx: Tx, job: Job, due_at: datetime) -> None:
        """Put a claimed job back, due at ``due_at``, with its attempt count increased."""
        ...

    def hasten(self, tx: Tx, kind: str, ref: str, due_at: datetime) -> None:
        """Make the waiting jobs ``kind`` + ``ref`` due at ``due_at`` at the latest, inside the
        caller's transaction (an approval decided wakes its run). A claimed job is left alone:
        its worker decides when it is due again."""
        ...

    async def recover(self) -> int:
        """Return jobs claimed by dead workers to the queue; return how many. Called at start-up
        and periodically."""
        ...

    def depth(self) -> int:
        """Jobs waiting (due or not), not counting claimed ones. Cheap: used for metrics."""
        ...

    def due(self) -> int:
        """Jobs due now and not claimed (delayed jobs not counted). Cheap."""
        ...

    async def close(self) -> None:
        """Stop handing out jobs; wake waiting ``get`` callers with :class:`QueueClosed`."""
        ...


class QueueClosed(Exception):
    """Raised by :meth:`JobQueue.get` once the queue is closed."""
