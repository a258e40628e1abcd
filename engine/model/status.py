"""Typed outcomes: the statuses a run and a step take, and the sets the engine reasons with.

The values are the strings stored in the ``run.status`` and ``step.status`` columns and shown by
the API, so a member compares equal to its stored string.

A run is ``queued`` until a worker takes it, ``running`` while its steps go, ``retrying`` or
``waiting`` while its job is delayed, ``held`` while flood protection or its run mode keeps it
back, and ends in one of :data:`FINAL`.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    WAITING = "waiting"
    HELD = "held"
    SUCCEEDED = "succeeded"
    SUCCEEDED_WITH_ERRORS = "succeeded_with_errors"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    LOOP_STOPPED = "loop_stopped"
    DISCARDED = "discarded"


class StepStatus(StrEnum):
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    """Its ``if`` was false."""
    FAILED = "failed"
    RETRYING = "retrying"
    WAITING = "waiting"
    WOULD_DO = "would_do"
    """In a test run: a write (or a wait) recorded with its input, not made."""
    RUNNING = "running"
    """A ``for_each`` step going through its items (each sub-step has its own row)."""


DONE = (StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.WOULD_DO)
"""A step the run has gone past (its output, if any, is for later steps)."""

FINAL = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.SUCCEEDED_WITH_ERRORS,
        RunStatus.SKIPPED,
        RunStatus.CANCELLED,
        RunStatus.LOOP_STOPPED,
        RunStatus.DISCARDED,
    }
)
"""A run in one of these has ended: nothing changes it again."""

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.RETRYING, RunStatus.WAITING)
"""A run that holds a slot or waits for one."""

GOING = frozenset({RunStatus.RUNNING, RunStatus.RETRYING, RunStatus.WAITING})
"""A run a worker has started and not ended."""

COUNTED = (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED_WITH_ERRORS, RunStatus.FAILED)
"""The ends auto-disable weighs: a run that did its work, or tried and failed."""

SUCCESSES = (RunStatus.SUCCEEDED, RunStatus.SKIPPED, RunStatus.CANCELLED, RunStatus.DISCARDED)
FAILURES = (RunStatus.FAILED, RunStatus.SUCCEEDED_WITH_ERRORS, RunStatus.LOOP_STOPPED)
"""How retention sorts ended runs (each kind is kept for its own number of days)."""
