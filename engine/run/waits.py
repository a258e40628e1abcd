"""Durable waits: a step that pauses its run for a duration or until a time.

``core.wait`` raises :class:`Wait`; the runner stores the due time in the step's trace row, sets
the run ``waiting`` with ``due_at``, and hands its job back to the queue due at that time. The
wait is a stored row, not a sleeping coroutine: it survives restarts, and waits of up to
:data:`MAX_WAIT` (90 days) are allowed.

With ``recheck: true``, the run checks again, once the wait is over, that the recipe still
applies: the payload is refreshed by the :class:`Refetchers` hook registered for the event's
type (a connector provides one, e.g. BigCommerce re-reading the product), then the trigger's
filter and the recipe's conditions are evaluated on it. If one no longer holds, the run ends
``skipped`` with that condition as its reason; otherwise later steps see the refreshed payload.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from engine import conditions
from engine.context import Services
from engine.errors import ConditionError
from engine.match.dispatcher import explanation_dict
from engine.model.events import Event
from engine.model.recipe import Recipe
from engine.registry import Registry

MAX_WAIT = timedelta(days=90)

RefetchFn = Callable[[Event], Awaitable[dict[str, Any] | None]]
"""Returns the event's payload as it would be now, or ``None`` if the resource is gone. May
raise :class:`~engine.errors.RetryableError` (the wait step's retry policy applies)."""


class Wait(Exception):
    """Raised by a step to pause its run until ``until``.

    ``detail`` goes into the waiting step's trace output; a wait with ``detail`` naming a
    ``call`` (:mod:`engine.run.calls`) runs its step again when the job comes back, instead of
    ending it. ``settle`` is awaited once the run is parked (to wake it at once if what it
    waits for happened meanwhile)."""

    def __init__(
        self,
        until: datetime,
        recheck: bool = False,
        *,
        detail: dict[str, Any] | None = None,
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(f"waiting until {until.isoformat()}")
        self.until = until
        self.recheck = recheck
        self.detail = detail or {}
        self.settle = settle
        self.traced_input: Any = None
        """The step's rendered parameters as the trace shows them (set by the runner)."""


def reruns(wait: dict[str, Any] | None) -> bool:
    """Whether a stored wait ends by running its step again (a recipe call), not by itself."""
    return wait is not None and bool(wait["output"].get("call"))


class Refetchers:
    """Refresh hooks by event type, registered as a service by connectors.

    ``add("bigcommerce.product.*", fn)`` serves every type under the prefix; an exact type wins
    over a prefix.
    """

    def __init__(self) -> None:
        self._exact: dict[str, RefetchFn] = {}
        self._prefix: dict[str, RefetchFn] = {}

    def add(self, pattern: str, fn: RefetchFn) -> None:
        if pattern.endswith(".*"):
            self._prefix[pattern[:-1]] = fn
        else:
            self._exact[pattern] = fn

    def find(self, type_: str) -> RefetchFn | None:
        found = self._exact.get(type_)
        if found is not None:
            return found
        best = max((p for p in self._prefix if type_.startswith(p)), key=len, default=None)
        return self._prefix[best] if best is not None else None


@dataclass(frozen=True)
class Recheck:
    passed: bool
    refreshed: bool
    reason: str | None = None
    detail: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"passed": self.passed, "refreshed": self.refreshed}
        if self.reason:
            out["reason"] = self.reason
        if self.detail:
            out["detail"] = self.detail
        return out


def recheck(recipe: Recipe, registry: Registry, event: Event) -> Recheck:
    """Evaluate the trigger's filter and the recipe's conditions on ``event`` (refreshed)."""
    refreshed = bool(event.meta.get("refreshed"))
    trigger = registry.trigger(recipe.trigger.type)
    if trigger.filter is not None:
        why = trigger.filter(trigger.params.model_validate(recipe.trigger.with_), event)
        if why is not None:
            return Recheck(False, refreshed, f"the trigger's filter no longer holds: {why}")
    data = event.context()
    for index, rule in enumerate(recipe.conditions):
        try:
            holds = conditions.truthy(conditions.compile_rule(rule)(data))
        except ConditionError as exc:
            return Recheck(False, refreshed, f"condition {index} could not be evaluated: {exc}")
        if not holds:
            detail = {"condition": index, **explanation_dict(conditions.explain(rule, data))}
            message = detail.get("message")
            text = f"condition {index} no longer holds" + (f": {message}" if message else "")
            return Recheck(False, refreshed, text, detail)
    return Recheck(True, refreshed)


async def refresh(event: Event, services: Services) -> tuple[Event | None, bool]:
    """The event with its payload as it is now, if a hook is registered for its type; returns
    ``(event, refreshed)``, with ``None`` for a resource that no longer exists."""
    fetchers = services.find(Refetchers)
    fetch = fetchers.find(event.type) if fetchers is not None else None
    if fetch is None:
        return event, False
    payload = await fetch(event)
    if payload is None:
        return None, True
    return replace(event, payload=payload, meta={**event.meta, "refreshed": True}), True
