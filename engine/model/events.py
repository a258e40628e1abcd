"""Events: what recipes react to, whatever their source (webhook, API, schedule, poll, Sous)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CausedBy:
    """Set on events produced by Sous's own writes: which run wrote, and how deep the chain is.

    ``chain`` lists the recipe ids of the runs that led here, oldest first, so a stopped loop
    can name it.
    """

    run_id: str
    recipe_uid: str
    depth: int
    chain: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "recipe_uid": self.recipe_uid,
            "depth": self.depth,
            "chain": list(self.chain),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CausedBy | None:
        if not data:
            return None
        return cls(
            run_id=data["run_id"],
            recipe_uid=data["recipe_uid"],
            depth=int(data["depth"]),
            chain=tuple(data.get("chain", ())),
        )


@dataclass(frozen=True)
class NewEvent:
    """An event on its way into the inbox. ``dedup_key`` defaults to a fresh id (no dedup)."""

    type: str
    payload: dict[str, Any]
    workspace: str = "default"
    store: str | None = None
    source: str = "api"
    dedup_key: str | None = None
    occurred_at: datetime | None = None
    caused_by: CausedBy | None = None
    target_recipe: str | None = None
    """When set, only this recipe (by uid) is considered (schedule firings, replays)."""


@dataclass(frozen=True)
class Event:
    """An event as stored in the inbox."""

    id: str
    type: str
    payload: dict[str, Any]
    workspace: str
    store: str | None
    source: str
    dedup_key: str
    occurred_at: datetime
    received_at: datetime
    caused_by: CausedBy | None = None
    target_recipe: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return self.caused_by.depth if self.caused_by else 0

    def context(self) -> dict[str, Any]:
        """The data conditions and templates see: the payload's keys plus ``event``."""
        data = dict(self.payload)
        data["event"] = {
            "id": self.id,
            "type": self.type,
            "store": self.store,
            "source": self.source,
            "occurred_at": self.occurred_at.isoformat(),
        }
        return data
