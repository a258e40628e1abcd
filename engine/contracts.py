"""The contracts between the engine's parts: what each stage may ask of the others.

:class:`~engine.engine.Engine` is a facade that builds the parts and wires them together; no part
receives it whole. Each stage is handed the host it is typed against here, which names the few
collaborators it uses, and the facade is the one object that satisfies them all. These
docstrings are the specification: a method's promise is written once, here.

Data flows one way: ingest → match → plan → run → trace, with operations (control, replay,
recovery, auto-disable) and time (scheduler, leadership) beside them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from engine.model.limits import AutoDisable, FloodLimit

if TYPE_CHECKING:
    from engine.clock import Clock
    from engine.context import Services
    from engine.match.dispatcher import CompiledRecipe, Decision, RecipeIndex
    from engine.model.events import Event, NewEvent
    from engine.model.recipe import Recipe
    from engine.model.run import RunState
    from engine.plan.modes import Admission, FloodGate
    from engine.queue.base import Job, JobQueue, NewJob
    from engine.store.db import Database, Tx
    from engine.store.recipes import SqlRecipeStore, StoredRecipe
    from engine.store.vault import Cipher
    from engine.timing.leader import Leadership

Listener = Callable[[str, dict[str, Any]], None]
"""Told ``(kind, data)`` of every stored event (``"event"``) and run change (``"run"``)."""

JobHandler = Callable[["Job"], Awaitable[None]]
"""Runs one job of a kind a connector registered; must complete or retry it through the queue."""


@dataclass(frozen=True)
class EngineSettings:
    max_depth: int = 5
    """The longest chain of events caused by Sous's own writes before a run stops as a loop."""
    workers: int = 16
    flood: FloodLimit | None = field(default_factory=FloodLimit)
    """Default flood limit of recipes that do not set one (``None``: no limit)."""
    auto_disable: AutoDisable | None = field(default_factory=AutoDisable)
    """Default auto-disable rule of recipes that do not set one (``None``: never)."""
    admission: bool | None = None
    """Run modes and slots in this process; ``None``: on with the embedded queue (the slots are
    kept in memory, which is right only where one process owns the queue)."""
    backlog: int | None = None
    """Backpressure with the embedded queue: when more jobs than this wait for a worker,
    ``Engine.receive`` holds its answer until they drop to it (``None``: a quarter of the
    workers, at least one). With a shared queue, the workers of other processes drain it and
    nothing is held."""
    backlog_wait: float = 1.0
    """The longest ``Engine.receive`` holds an answer, in seconds (the event is stored)."""


@dataclass
class IngestResult:
    event_id: str
    duplicate: bool
    runs: list[str] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


class Ingest(Protocol):
    async def ingest(self, new: NewEvent, follow_up: Sequence[str] = ()) -> IngestResult:
        """Store the event (deduplicated on its workspace and key) with its decisions, the runs
        they start and their jobs, in one transaction; return once it has committed.
        ``follow_up`` names job kinds to enqueue for the event in the same transaction."""
        ...


class Notices(Protocol):
    """Auto-disable, as the stages that report to it see it."""

    def notice(
        self, type_: str, compiled: CompiledRecipe, reason: str, details: dict[str, Any], key: str
    ) -> NewEvent:
        """An event telling a recipe's workspace about the recipe (deduplicated on ``key``)."""
        ...

    async def run_failed(self, uid: str) -> None:
        """A run of recipe ``uid`` failed: switch the recipe off if its rule says so."""
        ...


class Executing(Protocol):
    """The runner, as run control and replay see it."""

    @property
    def executing(self) -> set[str]:
        """Runs a worker of this process is executing now."""
        ...

    @property
    def cipher(self) -> Cipher | None:
        """Opens step outputs sealed in the trace (``None`` without a vault)."""
        ...


class Core(Protocol):
    """What every part shares: the database and the clock."""

    @property
    def db(self) -> Database: ...
    @property
    def clock(self) -> Clock: ...


class Slots(Core, Protocol):
    """What every stage that creates, moves or ends runs shares: the queue, and the in-memory
    run slots (:mod:`engine.plan.modes`)."""

    @property
    def queue(self) -> JobQueue: ...
    @property
    def admission(self) -> Admission: ...

    async def enqueue(self, jobs: Sequence[NewJob]) -> None:
        """Write ``jobs`` to the queue in a transaction of their own."""
        ...

    def spawn(self, work: Awaitable[None]) -> None:
        """Run ``work`` beside the workers (its failure is logged, never raised)."""
        ...

    def recipe_of(self, uid: str) -> Recipe | None:
        """The current recipe of ``uid`` (enabled or not), for its mode and limits."""
        ...

    def concurrency_key(self, recipe: Recipe, event: Event) -> str | None:
        """The recipe's concurrency key rendered for ``event`` (``"*"`` when it cannot be)."""
        ...

    def announce(
        self,
        run_id: str,
        recipe_uid: str,
        workspace: str,
        status: str,
        next_step: int | None = None,
    ) -> None:
        """Tell listeners (metrics, the live stream, the sandbox) that a run changed."""
        ...


class PlanHost(Slots, Protocol):
    """Planning: admission of the runs an event starts (flood limit, then run mode)."""

    @property
    def settings(self) -> EngineSettings: ...
    @property
    def floods(self) -> FloodGate: ...
    @property
    def autodisable(self) -> Notices: ...


class OpsHost(Slots, Protocol):
    """Run control, replay and recovery."""

    @property
    def runner(self) -> Executing: ...


class RunnerHost(Ingest, Protocol):
    """The runner: what a run's steps report beyond its own trace."""

    @property
    def admission(self) -> Admission: ...
    @property
    def autodisable(self) -> Notices: ...
    @property
    def alerting(self) -> bool:
        """Whether failed runs are e-mailed (a handler for alert jobs is installed)."""
        ...

    @property
    def links(self) -> str:
        """Where people reach this Sous (``https://sous.example``; empty when unknown): the
        start of the links events and alerts carry."""
        ...

    async def record_failure(self, notice: NewEvent, also: Callable[[Tx], None]) -> None:
        """Store ``notice`` (``sous.run.failed``) with what it starts, in one transaction with
        ``also(tx)`` (the failed run's final state), written again after a transient fault. If
        the event cannot be stored at all, ``also`` is written alone (the failure is never lost
        to its notice)."""
        ...

    def notify_run(self, state: RunState, status: str) -> None:
        """Tell listeners that run ``state`` is now ``status``."""
        ...


class RecipeHost(Ingest, Core, Protocol):
    """Auto-disable and the scheduler: the live recipes and the way to change one."""

    @property
    def settings(self) -> EngineSettings: ...
    @property
    def alerting(self) -> bool:
        """Whether notices about recipes are e-mailed too (see :class:`RunnerHost`)."""
        ...

    @property
    def index(self) -> RecipeIndex: ...
    @property
    def recipes(self) -> SqlRecipeStore: ...
    @property
    def leadership(self) -> Leadership: ...

    def refresh(self, stored: StoredRecipe | None, uid: str | None = None) -> None:
        """Bring one recipe's index entry up to date after a change."""
        ...


class StoreConnector(Protocol):
    """A store platform's connector (BigCommerce), as the API and the composition root use it."""

    async def register(
        self,
        *,
        workspace: str,
        store_id: str,
        store_hash: str,
        api_base_url: str,
        access_token: str,
        webhook_secret: str,
    ) -> dict[str, Any] | None:
        """Start serving a newly connected store (register its webhooks); what it returns is
        kept with the store (``info["webhooks"]``)."""
        ...

    async def unregister(self, *, workspace: str, store_hash: str) -> None:
        """Stop serving a store that is disconnected (its webhooks are removed)."""
        ...

    def health(self, workspace: str, store_hash: str) -> dict[str, Any] | None:
        """``hooks_active``, ``hooks_expected``, ``quota`` and other details of a store, as last
        seen; ``None`` for a store this connector does not serve."""
        ...

    def metrics(self) -> dict[str, dict[str, float]]:
        """Per-store figures for ``/metrics`` (requests, rate limited, retries, …)."""
        ...


class ConnectorHost(Ingest, Core, Protocol):
    """All a connector may use of the engine (see ``engine/__init__.py`` for the names)."""

    alerting: bool
    """Whether the engine writes alert jobs (:mod:`engine.run.alerts`); set by their handler."""
    links: str
    """Where people reach this Sous (the start of links in events and alerts)."""

    @property
    def queue(self) -> JobQueue: ...
    @property
    def services(self) -> Services: ...
    @property
    def leadership(self) -> Leadership: ...

    async def ingest_many(
        self,
        news: Sequence[NewEvent],
        *,
        follow_up: Callable[[str], Sequence[str]] = ...,
        also: Callable[[Tx], None] | None = None,
        first: Callable[[Tx], None] | None = None,
    ) -> list[IngestResult]:
        """Store several events in one transaction together with ``also(tx)``: all or nothing
        (a job that derives events passes its own completion as ``also``); ``first(tx)`` runs
        before the events are stored (a check that may refuse them)."""
        ...

    def compiled(self, uid: str) -> CompiledRecipe | None:
        """The enabled recipe ``uid`` as it matches events now, or ``None``."""
        ...

    def handle(self, kind: str, handler: JobHandler, concurrency: int = 64) -> None:
        """Run jobs of ``kind`` with ``handler``, up to ``concurrency`` at once."""
        ...

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every event and run change; returns the unsubscribe."""
        ...
