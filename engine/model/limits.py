"""Per-recipe safety limits: flood protection and auto-disable.

Both can be set on a recipe (``flood:``, ``auto_disable:``), or turned off there with ``false``;
a recipe that says nothing gets the engine's defaults (:class:`engine.engine.EngineSettings`).
Durations are written as ``"90s"``, ``"1m"``, ``"2h30m"``, ``"7d"`` or a number of seconds.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_serializer,
    field_validator,
)

from engine.model.durations import parse_duration

T = TypeVar("T")

Duration = Annotated[
    timedelta,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d", "examples": ["90s", "1m", "2h30m", "7d"]},
                {"type": "number", "minimum": 0},
            ],
            "description": "a duration: text such as '90s', '1m', '2h30m', '7d', or seconds",
        }
    ),
]


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            return parse_duration(value)
        except (OverflowError, ValueError):  # e.g. 10**30 seconds, or 'soon'
            pass
    raise ValueError("a duration is a number of seconds or text such as '90s', '1m', '2h30m'")


def _text(value: timedelta) -> str:
    seconds = value.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class FloodLimit(BaseModel):
    """Hold the runs a recipe would start beyond ``max_runs`` within one ``per`` window.

    Held runs wait (status ``held``, no job) until they are released or discarded through the
    API; the recipe's owners hear of it once per window (event ``sous.recipe.flooded``).
    """

    model_config = ConfigDict(extra="forbid")

    max_runs: int = Field(default=1000, ge=1, le=10_000_000, description="runs per window")
    per: Duration = Field(
        default=timedelta(minutes=1),
        description="the window, e.g. '1m'",
        json_schema_extra={"default": "1m"},
    )

    @field_validator("per", mode="before")
    @classmethod
    def _per(cls, value: Any) -> timedelta:
        found = _duration(value)
        if not timedelta(seconds=1) <= found <= timedelta(days=1):
            raise ValueError("the flood window must be between 1s and 1d")
        return found

    @field_serializer("per")
    def _per_text(self, value: timedelta) -> str:
        return _text(value)

    def describe(self) -> str:
        return f"more than {self.max_runs} runs in {_text(self.per)}"


class AutoDisable(BaseModel):
    """Switch a recipe off when at least ``failure_share`` of its runs finished within the last
    ``window`` failed, once at least ``min_runs`` runs finished in that window."""

    model_config = ConfigDict(extra="forbid")

    failure_share: float = Field(default=0.8, gt=0, le=1)
    window: Duration = Field(
        default=timedelta(hours=1), description="e.g. '1h'", json_schema_extra={"default": "1h"}
    )
    min_runs: int = Field(default=20, ge=1, le=100_000)

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> timedelta:
        found = _duration(value)
        if not timedelta(minutes=1) <= found <= timedelta(days=30):
            raise ValueError("the auto-disable window must be between 1m and 30d")
        return found

    @field_serializer("window")
    def _window_text(self, value: timedelta) -> str:
        return _text(value)


def pick(own: T | bool | None, default: T | None) -> T | None:
    """A recipe's own setting, else the engine default; ``False`` turns the limit off."""
    if own is False:
        return None
    if own is None or own is True:
        return default
    return own
