"""A run's state as a worker needs it: what planning hands the runner with the run's job, and
what :func:`engine.run.runstate.load_run` rebuilds from the database after a restart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.model.events import Event
from engine.model.recipe import Recipe


@dataclass
class EachProgress:
    """How far a ``for_each`` step has gone: its items (rendered once, stored in its trace row's
    input), the outputs of each item's steps so far, and the next item and step to run."""

    items: list[Any]
    total: int
    """Items the list had (more than ``items`` when it was truncated to ``max_items``)."""
    done: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    """Per item so far: its steps' outputs by step id."""
    item: int = 0
    sub: int = 0
    started_at: Any = None


@dataclass
class BranchProgress:
    """How far one branch of a ``parallel`` step has gone."""

    sub: int = 0
    """The next of its steps to run."""
    done: dict[str, Any] = field(default_factory=dict)
    """Its steps' outputs so far, by step id."""
    attempts: int = 0
    """Attempts so far of the step to run next."""
    tries: list[dict[str, Any]] = field(default_factory=list)
    failed: str | None = None
    """Why it stopped at a failed step (``step <id>: <error>``)."""


@dataclass
class ParallelProgress:
    """How far a ``parallel`` step's branches have gone (rebuilt from their trace rows)."""

    branches: dict[str, BranchProgress]
    started_at: Any = None


@dataclass
class RunState:
    """What a worker needs to continue a run; rebuilt from the database after a restart."""

    run_id: str
    recipe_uid: str
    workspace: str
    recipe: Recipe
    event: Event
    next_step: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    failures: int = 0
    attempts: int = 0
    test: bool = False
    """A test run: reads are made, writes (and waits) recorded as ``would_do``."""
    resumed: bool = False
    """Loaded from the database: a step row may exist from before a crash."""
    tries: list[dict[str, Any]] = field(default_factory=list)
    """The failed attempts of the step at ``next_step`` so far (its trace's ``attempt_log``)."""
    wait: dict[str, Any] | None = None
    """The step at ``next_step`` is waiting: its stored ``output`` (until, since, recheck) and
    ``input``."""
    each: EachProgress | None = None
    """The step at ``next_step`` is a ``for_each`` part way through its items."""
    branches: ParallelProgress | None = None
    """The step at ``next_step`` is a ``parallel`` part way through its branches."""
