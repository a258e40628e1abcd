"""The connector registry: every trigger type and action name Sous knows, with its models.

Each connector exports one :class:`Connector` value listing its triggers and actions explicitly;
nothing is looked up by building module names from strings. The registry is what the recipe
validator resolves ``trigger.type`` and each step's ``use`` against, what the catalog API lists,
and what the runner calls.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from engine.errors import RegistryError
from engine.model.retry import RetryPolicy

if TYPE_CHECKING:
    from engine.context import ActionContext
    from engine.model.events import Event


class Params(BaseModel):
    """Base for action and trigger parameter models: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class NoParams(Params):
    """For triggers and actions that take no parameters."""


ActionHandler = Callable[["ActionContext", Any], Awaitable[BaseModel | dict[str, Any] | None]]
TriggerFilter = Callable[[Any, "Event"], str | None]
"""Returns ``None`` when the event passes the trigger's filter, else the reason it does not."""


@dataclass(frozen=True)
class TriggerSpec:
    """One event type a recipe can start from.

    ``type`` is both the recipe's ``trigger.type`` and the type of the events that fire it.
    ``payload`` describes the event payload (its JSON Schema is published in the catalog and
    used by front ends as a field picker); ``sample`` is a realistic payload for dry-runs.
    ``params`` validates the trigger's own ``with:`` options; ``filter`` applies them to an event.
    """

    type: str
    description: str
    payload: builtins.type[BaseModel] | None = None
    sample: dict[str, Any] = field(default_factory=dict)
    params: builtins.type[Params] = NoParams
    filter: TriggerFilter | None = None
    kind: Literal["event", "schedule", "poll"] = "event"


@dataclass(frozen=True)
class ActionSpec:
    """One step a recipe can ``use``.

    ``params`` validates the rendered ``with:`` block before the handler sees it; ``output``
    documents what the step returns to later steps (``steps.<id>.<field>``). ``writes`` says in
    a sentence what it changes outside Sous (shown in the catalog); an empty string means it
    only reads. ``secret_fields`` are parameter names whose values never reach a trace.
    """

    name: str
    description: str
    params: type[BaseModel]
    handler: ActionHandler
    output: type[BaseModel] | None = None
    writes: str = ""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 30.0
    secret_fields: frozenset[str] = frozenset()
    is_write: Callable[[Any], bool] | None = None
    """For an action that writes only with some parameters (an HTTP GET reads): whether this
    call, with these validated parameters, writes. ``None``: it writes when ``writes`` says it
    changes something. A test run records a write with its input instead of making it."""


@dataclass(frozen=True)
class Connector:
    """What one connector package contributes: its triggers and its actions."""

    name: str
    description: str
    triggers: tuple[TriggerSpec, ...] = ()
    actions: tuple[ActionSpec, ...] = ()


class Registry:
    """Triggers and actions by name. Built once at start-up from an explicit connector list."""

    def __init__(self, connectors: Iterable[Connector] = ()) -> None:
        self.connectors: dict[str, Connector] = {}
        self.triggers: dict[str, TriggerSpec] = {}
        self.actions: dict[str, ActionSpec] = {}
        for connector in connectors:
            self.register(connector)

    def register(self, connector: Connector) -> None:
        if connector.name in self.connectors:
            raise ValueError(f"connector {connector.name!r} registered twice")
        self.connectors[connector.name] = connector
        for trigger in connector.triggers:
            if trigger.type in self.triggers:
                raise ValueError(f"trigger {trigger.type!r} registered twice")
            self.triggers[trigger.type] = trigger
        for action in connector.actions:
            if action.name in self.actions:
                raise ValueError(f"action {action.name!r} registered twice")
            self.actions[action.name] = action

    def trigger(self, type_: str) -> TriggerSpec:
        """The trigger for an event type. A trigger registered as ``prefix.*`` serves every type
        under that prefix (``custom.*`` for events sent through the API)."""
        found = self.triggers.get(type_)
        if found is None and "." in type_:
            found = self.triggers.get(type_.rsplit(".", 1)[0] + ".*")
            if found is not None and not type_.rsplit(".", 1)[1]:
                found = None
        if found is None:
            raise RegistryError("trigger type", type_, list(self.triggers))
        return found

    def action(self, name: str) -> ActionSpec:
        try:
            return self.actions[name]
        except KeyError:
            raise RegistryError("action", name, list(self.actions)) from None
