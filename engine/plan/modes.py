"""Run modes, concurrency and flood protection: what happens to a run a recipe starts.

A recipe's runs form a *group*: the recipe, or the recipe and the rendered ``concurrency_key``.
Each group has a number of slots; a run holds its slot from the moment it is admitted until it
ends (waits and retries included), so runs of the same group never overlap beyond that number:

==========  =====  ================================================================
mode        slots  a new run while the slots are taken
==========  =====  ================================================================
single      1      is recorded as ``skipped`` (reason: the run still going)
restart     1      waits; every older run of the group is cancelled (at its next
                   step boundary if it is executing, at once otherwise)
queued      1      waits its turn in order; beyond ``max_runs`` waiting it is ``held``
parallel    max    waits its turn (``max_runs`` slots; one per key with a
                   ``concurrency_key``, so runs for the same key never overlap)
==========  =====  ================================================================

A run waiting its turn is a ``queued`` run row without a job; when a slot frees, the next one's
job is enqueued in the same transaction as the state change that freed it. The bookkeeping is
in memory (the embedded engine owns its queue) and rebuilt from the run and job tables at start.
Where the queue is shared by several processes admission is off and the queue's lock keys keep
the limits that can hold there (see :func:`lock_of`).
A run whose turn came before its own write failed (a duplicate event) is marked
:data:`NEVER_STORED`, and the runner drops its job.

:class:`FloodGate` counts the runs each recipe started in the current window (fixed windows of
the recipe's ``flood.per``); runs beyond ``flood.max_runs`` are ``held`` without a job until
they are released or discarded. Counts are kept in memory: a restart starts a fresh window.
"""

from __future__ import annotations

import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from engine.model.limits import FloodLimit
from engine.model.recipe import Mode, Recipe
from engine.queue.base import NewJob

NEVER_STORED = "\x00never stored"
"""A cancellation reason: the run's write failed (or its event was a duplicate) after its turn
came; its job must be dropped without writing anything."""


class Verdict(StrEnum):
    START = "start"
    PENDING = "pending"
    SKIP = "skip"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class Admitted:
    verdict: Verdict
    reason: str | None = None
    supersede: tuple[str, ...] = ()
    """``restart``: the older runs of the group to cancel once the new run is stored."""


_START = Admitted(Verdict.START)
_PENDING = Admitted(Verdict.PENDING)


@dataclass(slots=True)
class _Ticket:
    run_id: str
    job: NewJob


@dataclass
class _Group:
    capacity: int
    active: dict[str, None] = field(default_factory=dict)
    pending: deque[_Ticket] = field(default_factory=deque)


def lock_of(
    uid: str, recipe: Recipe | None, key: str | None, spread: str | None = None
) -> str | None:
    """The queue lock key of a run's job: runs that must not overlap share one (a second guard
    beside the slots, and the only one where admission is off).

    ``spread`` (the run's id, given where admission is off: a queue shared by several
    processes) puts a ``parallel`` recipe's run on one of ``max_runs`` lock keys, so that no
    more than ``max_runs`` of its runs go at once in all processes together; runs on one key
    go in order, a waiting run keeping its key."""
    if key is not None:
        return f"{uid}:{key}"
    if recipe is not None and recipe.mode is not Mode.PARALLEL:
        return uid
    if spread is not None and recipe is not None:
        return f"{uid}#{zlib.crc32(spread.encode()) % recipe.max_runs}"
    return None


def group_of(recipe_uid: str, key: str | None) -> str:
    return recipe_uid if key is None else f"{recipe_uid}:{key}"


def slots(recipe: Recipe | None, keyed: bool) -> tuple[int, int | None]:
    """``(slots, longest line)`` of a group; ``None``: no limit on the line."""
    if recipe is None:
        return 1, None
    mode = recipe.mode
    if mode is Mode.PARALLEL and not keyed:
        return recipe.max_runs, None
    if mode is Mode.QUEUED:
        return 1, recipe.max_runs
    return 1, None


class Admission:
    """Slots and lines of every group with a run in progress (embedded engine).

    Disabled (``enabled=False``, for queues shared by several processes), every run starts at
    once and only the queue's lock keys keep runs that must not overlap apart.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._groups: dict[str, _Group] = {}
        self._where: dict[str, str] = {}
        self._late: set[str] = set()
        """Runs that waited in a line and were then given a slot (their job may exist)."""
        self.cancel_requests: dict[str, str] = {}
        """Run id → reason: the runner ends the run ``cancelled`` at its next step boundary, or
        at once if its job is handed out before that (then it never starts)."""

    def admit(
        self,
        run_id: str,
        group: str,
        recipe: Recipe | None,
        keyed: bool,
        job: NewJob,
        *,
        forced: bool = False,
    ) -> Admitted:
        """Decide for a new run. ``forced`` (replays, released runs) only waits its turn: no
        skipping, holding or superseding."""
        if not self.enabled:
            return _START
        capacity, line = slots(recipe, keyed)
        found = self._groups.get(group)
        if found is None:
            found = self._groups[group] = _Group(capacity)
        found.capacity = capacity
        mode = recipe.mode if recipe is not None else Mode.QUEUED
        supersede: tuple[str, ...] = ()
        if not forced and mode is not Mode.PARALLEL and (found.active or found.pending):
            busy = (*found.active, *(t.run_id for t in found.pending))
            if mode is Mode.SINGLE:
                return Admitted(
                    Verdict.SKIP, f"mode single: run {busy[0]} of this recipe is still going"
                )
            full = len(found.active) >= capacity and line is not None and len(found.pending) >= line
            if mode is Mode.QUEUED and full:
                return Admitted(
                    Verdict.HOLD, f"mode queued: {line} runs are already waiting their turn"
                )
            if mode is Mode.RESTART:
                supersede = busy
        self._where[run_id] = group
        if len(found.active) < capacity and not found.pending:
            found.active[run_id] = None
            return Admitted(Verdict.START, supersede=supersede) if supersede else _START
        found.pending.append(_Ticket(run_id, job))
        return Admitted(Verdict.PENDING, supersede=supersede) if supersede else _PENDING

    def leave(self, run_id: str) -> list[NewJob]:
        """``run_id`` ended (or will never start): free its slot or its place in the line, and
        return the jobs of the runs that take the freed slots (to enqueue with the change)."""
        return self.depart(run_id)[1]

    def forget(self, run_id: str) -> list[NewJob]:
        """:meth:`leave` for a run whose own write failed: if its turn had come (its job may be
        enqueued), mark it :data:`NEVER_STORED` so that the job ends without a trace."""
        if run_id in self._late:
            self.cancel_requests[run_id] = NEVER_STORED
        return self.leave(run_id)

    def depart(self, run_id: str) -> tuple[str | None, list[NewJob]]:
        """:meth:`leave`, also returning the group left (for :meth:`rejoin`)."""
        group = self._where.pop(run_id, None)
        if group is None:
            return None, []
        if self._late:
            self._late.discard(run_id)
        found = self._groups[group]
        active = found.active
        if run_id in active:
            del active[run_id]
            if not found.pending:  # the common case: nobody waits
                if not active:
                    del self._groups[group]
                return group, []
        else:
            found.pending = deque(t for t in found.pending if t.run_id != run_id)
        started = self._pump(found)
        self._tidy(group, found)
        return group, started

    def rejoin(self, run_id: str, group: str, started: list[NewJob]) -> None:
        """Undo :meth:`leave` after the write carrying its jobs failed."""
        found = self._groups.setdefault(group, _Group(1))
        refs = {j.ref for j in started}
        for ticket_job in reversed(started):
            found.active.pop(ticket_job.ref, None)
            self._late.discard(ticket_job.ref)
            found.pending.appendleft(_Ticket(ticket_job.ref, ticket_job))
        found.active[run_id] = None
        self._where[run_id] = group
        for ref in refs:
            self._where[ref] = group

    def group(self, run_id: str) -> str | None:
        return self._where.get(run_id)

    def holders(self, group: str) -> list[str]:
        found = self._groups.get(group)
        return list(found.active) if found else []

    def waiting(self, group: str) -> list[str]:
        found = self._groups.get(group)
        return [t.run_id for t in found.pending] if found else []

    def restore(self, group: str, capacity: int, run_id: str, job: NewJob | None) -> None:
        """Rebuild at start: ``job`` is ``None`` for a run that holds its slot (it has a job
        row), else the job to enqueue when its turn comes."""
        found = self._groups.setdefault(group, _Group(capacity))
        found.capacity = capacity
        self._where[run_id] = group
        if job is None:
            found.active[run_id] = None
        else:
            found.pending.append(_Ticket(run_id, job))

    def pump_all(self) -> list[NewJob]:
        """Start every waiting run that has a free slot (after a rebuild)."""
        started: list[NewJob] = []
        for name, found in list(self._groups.items()):
            started += self._pump(found)
            self._tidy(name, found)
        return started

    def stats(self) -> dict[str, int]:
        return {
            "groups": len(self._groups),
            "holding": sum(len(g.active) for g in self._groups.values()),
            "waiting": sum(len(g.pending) for g in self._groups.values()),
        }

    def _pump(self, found: _Group) -> list[NewJob]:
        started: list[NewJob] = []
        while found.pending and len(found.active) < found.capacity:
            ticket = found.pending.popleft()
            found.active[ticket.run_id] = None
            self._late.add(ticket.run_id)
            started.append(ticket.job)
        return started

    def _tidy(self, name: str, found: _Group) -> None:
        if not found.active and not found.pending:
            self._groups.pop(name, None)


class FloodGate:
    """Runs started per recipe in the current fixed window."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[datetime, datetime, int]] = {}
        """Recipe uid → (window start, window end, runs started in it)."""
        self._told: dict[str, datetime] = {}

    @staticmethod
    def window(now: datetime, limit: FloodLimit) -> datetime:
        per = limit.per.total_seconds()
        start = (now.timestamp() // per) * per
        return datetime.fromtimestamp(start, UTC)

    def take(self, uid: str, limit: FloodLimit, now: datetime) -> tuple[bool, datetime]:
        """Count one run; ``False`` when the window is full (the run is to be held)."""
        found = self._counts.get(uid)
        if found is None or not found[0] <= now < found[1]:
            start = self.window(now, limit)
            found = (start, start + limit.per, 0)
        start, end, count = found
        if count >= limit.max_runs:
            return False, start
        self._counts[uid] = (start, end, count + 1)
        return True, start

    def give_back(self, uid: str, start: datetime) -> None:
        found = self._counts.get(uid)
        if found is not None and found[0] == start and found[2] > 0:
            self._counts[uid] = (found[0], found[1], found[2] - 1)

    def first_hold(self, uid: str, start: datetime) -> bool:
        """True once per recipe and window: time to tell the recipe's owners."""
        if self._told.get(uid) == start:
            return False
        self._told[uid] = start
        return True
