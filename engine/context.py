"""What an action handler gets besides its parameters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from engine.clock import Clock
from engine.model.events import Event, NewEvent

T = TypeVar("T")


class Services:
    """Shared resources (store clients, SMTP settings, the backorder ledger) looked up by type.

    The composition root registers one object per type at start-up; connectors ask for what
    they need with ``ctx.services.get(BigCommerceStores)``. A missing service is a wiring error
    and says which type was asked for.
    """

    def __init__(self) -> None:
        self._items: dict[type[Any], Any] = {}

    def add(self, item: object, as_type: type[Any] | None = None) -> None:
        self._items[as_type or type(item)] = item

    def get(self, kind: type[T]) -> T:
        try:
            item: T = self._items[kind]
        except KeyError:
            raise LookupError(f"no {kind.__name__} is configured in this process") from None
        return item

    def find(self, kind: type[T]) -> T | None:
        found: T | None = self._items.get(kind)
        return found


Emit = Callable[[NewEvent], Awaitable[None]]


@dataclass
class ActionContext:
    """The run, step and event an action executes for.

    ``idempotency_key`` is stable across retries and replays of the same step of the same run:
    a connector passes it on where the remote side supports one, and otherwise checks the
    current remote state before repeating a write it may already have made. ``emit`` sends an
    event caused by this run (it carries ``caused_by`` so loops can be stopped).
    """

    run_id: str
    step_id: str
    recipe_uid: str
    workspace: str
    store: str | None
    event: Event
    clock: Clock
    services: Services
    emit: Emit
    attempt: int = 1
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        return f"{self.run_id}:{self.step_id}"
