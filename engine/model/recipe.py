"""The recipe document: one pydantic model for YAML files and the HTTP API alike."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.model.limits import AutoDisable, FloodLimit
from engine.model.retry import RetryPolicy
from engine.model.text import Text

SLUG_MAX = 80
SLUG = rf"^[a-z0-9][a-z0-9_-]{{0,{SLUG_MAX - 1}}}$"

FOR_EACH = "core.for_each"
"""The ``use`` of a ``for_each`` step (set by the document's ``for_each:``)."""
MAX_ITEMS = 999
"""The most items one ``for_each`` step runs (``max_items``)."""
MAX_SUB_STEPS = 20
"""The most steps one ``for_each`` step runs per item."""
DEFAULT_MAX_ITEMS = 50

PARALLEL = "core.parallel"
"""The ``use`` of a ``parallel`` step (set by the document's ``parallel:``)."""
MIN_BRANCHES, MAX_BRANCHES = 2, 10
"""How many branches one ``parallel`` step has; each runs 1 to ``MAX_SUB_STEPS`` steps."""
BRANCH = r"^[a-z0-9][a-z0-9_]{0,39}$"
"""A branch's name: later steps read ``steps.<step>.<branch>.<sub-step>.<field>``."""
NOT_IN_BRANCH = frozenset({"core.wait", "core.approval", "core.call_recipe"})
"""Actions that wait (or may): refused inside a ``parallel`` branch when a recipe is saved."""
LOOP_FIELDS = ("for_each", "max_items", "on_overflow", "steps")
"""The fields of a ``for_each`` step."""
PARALLEL_FIELDS = ("parallel", "fail_fast")
"""The fields of a ``parallel`` step."""


class Mode(StrEnum):
    """What happens when a run is triggered while another run of the same recipe (and key) is
    still going: ``single`` drops the new one, ``restart`` cancels the old one, ``queued`` waits
    its turn, ``parallel`` runs side by side up to ``max_runs``."""

    SINGLE = "single"
    RESTART = "restart"
    QUEUED = "queued"
    PARALLEL = "parallel"


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: str = Field(
        description="An event type from the catalog, e.g. bigcommerce.product.out_of_stock"
    )
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="Trigger options")


class Step(BaseModel):
    """One action of a recipe. Later steps read this one's output as ``steps.<id>.<field>``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str | None = Field(default=None, pattern=SLUG)
    use: str = Field(description="An action name from the catalog, e.g. email.send")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    if_: Any = Field(default=None, alias="if", description="JsonLogic: the step runs only if true")
    timeout: float | None = Field(default=None, gt=0, le=3600, description="seconds")
    retry: RetryPolicy | None = None
    continue_on_error: bool = False
    for_each: Any = Field(
        default=None,
        description="A list, or a template that renders to one (e.g. {{ order.lines }}): the "
        "step runs its steps once per item, with item and index in scope",
    )
    max_items: int | None = Field(
        default=None, ge=1, le=MAX_ITEMS, description="for_each: at most this many items (50)"
    )
    on_overflow: Literal["truncate", "fail"] | None = Field(
        default=None,
        description="for_each: with more items than max_items, run the first ones and say so "
        "in the output (truncate, the default) or fail the step",
    )
    steps: list[Step] | None = Field(
        default=None, min_length=1, max_length=MAX_SUB_STEPS, description="for_each: per item"
    )
    parallel: dict[str, list[Step]] | None = Field(
        default=None,
        description="Named branches (2-10), each a list of 1-20 steps: the branches run at the "
        "same time, the steps of a branch in order; the output is {branch: {step id: output}}",
    )
    fail_fast: bool | None = Field(
        default=None,
        description="parallel: a failed branch stops the others at their next step (false: "
        "the others run to their end first, the default)",
    )

    @model_validator(mode="before")
    @classmethod
    def _for_each_use(cls, data: Any) -> Any:
        if isinstance(data, dict) and "use" not in data:
            if "for_each" in data:
                data = {**data, "use": FOR_EACH}
            elif "parallel" in data:
                data = {**data, "use": PARALLEL}
        return data

    @model_validator(mode="after")
    def _for_each_shape(self) -> Step:
        if self.use == PARALLEL:
            return self._parallel_shape()
        if any(getattr(self, name) is not None for name in PARALLEL_FIELDS):
            raise ValueError("parallel and fail_fast belong to a parallel step")
        if self.use != FOR_EACH:
            if any(getattr(self, name) is not None for name in LOOP_FIELDS):
                raise ValueError(
                    "for_each, max_items, on_overflow and steps belong to a for_each step"
                )
            return self
        if self.for_each is None or not self.steps:
            raise ValueError("a for_each step needs for_each (the list) and steps (run per item)")
        if self.with_:
            raise ValueError("a for_each step takes no with: its steps do")
        _sub_ids(self.steps, "this for_each")
        return self

    def _parallel_shape(self) -> Step:
        if any(getattr(self, name) is not None for name in LOOP_FIELDS):
            raise ValueError("for_each, max_items, on_overflow and steps belong to a for_each step")
        if self.with_:
            raise ValueError("a parallel step takes no with: the steps of its branches do")
        branches = self.parallel or {}
        if not MIN_BRANCHES <= len(branches) <= MAX_BRANCHES:
            raise ValueError(
                f"a parallel step has {MIN_BRANCHES} to {MAX_BRANCHES} branches "
                f"(parallel: {{name: [steps]}}), not {len(branches)}"
            )
        for name, steps in branches.items():
            if not re.match(BRANCH, name):
                raise ValueError(
                    f"branch name {name!r}: use lowercase letters, digits and _, starting with "
                    "a letter or digit, at most 40 characters"
                )
            if not 1 <= len(steps) <= MAX_SUB_STEPS:
                raise ValueError(
                    f"branch {name!r} has {len(steps)} steps; a branch has 1 to {MAX_SUB_STEPS}"
                )
            _sub_ids(steps, f"branch {name!r}")
        return self

    def is_loop(self) -> bool:
        """A ``for_each`` step: its ``steps`` run once per item."""
        return self.use == FOR_EACH

    def is_parallel(self) -> bool:
        """A ``parallel`` step: its branches run at the same time."""
        return self.use == PARALLEL

    def has_sub_steps(self) -> bool:
        """A ``for_each`` or ``parallel`` step: its row is written when it starts, and its
        sub-steps have rows of their own."""
        return self.is_loop() or self.is_parallel()


def _sub_ids(steps: list[Step], where: str) -> None:
    """Give sub-steps without an id ``step1``, ``step2``…; refuse an id used twice."""
    seen: set[str] = set()
    for n, sub in enumerate(steps):
        if sub.id is None:
            sub.id = f"step{n + 1}"
        if sub.id in seen:
            raise ValueError(f"step id {sub.id!r} is used twice in {where}")
        seen.add(sub.id)


class Recipe(BaseModel):
    """Trigger, conditions, actions: a merchant's automation."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "sold-out-to-backorder",
                    "name": "Sold-out products go on backorder",
                    "trigger": {"type": "bigcommerce.product.out_of_stock"},
                    "conditions": [{"==": [{"var": "product.inventory_tracking"}, "product"]}],
                    "actions": [
                        {
                            "id": "hold",
                            "use": "backorder.assign",
                            "with": {"product_id": "{{ product.id }}", "limit": 50},
                        }
                    ],
                }
            ]
        },
    )

    id: str = Field(pattern=SLUG, description="Unique within the workspace")
    name: Text = Field(min_length=1, max_length=200)
    description: Text = ""
    enabled: bool = True
    version: int | None = Field(default=None, ge=1, description="Set by Sous on every change")
    mode: Mode = Mode.PARALLEL
    max_runs: int = Field(default=10, ge=1, le=1000)
    concurrency_key: str | None = Field(
        default=None, description="Template: runs with the same key never overlap"
    )
    flood: FloodLimit | bool | None = Field(
        default=None,
        description="Hold runs beyond max_runs per window ({max_runs: 100, per: 1m}); "
        "false turns it off; absent: the engine's default",
    )
    auto_disable: AutoDisable | bool | None = Field(
        default=None,
        description="Switch the recipe off when most of its recent runs fail; false turns it "
        "off; absent: the engine's default",
    )
    store: str | list[str] = Field(default="*", description="A store hash, a list, or * for all")
    trigger: Trigger
    conditions: list[Any] = Field(
        default_factory=list, description="JsonLogic rules, all must hold"
    )
    actions: list[Step] = Field(min_length=1, max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _steps_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "steps" in data and "actions" not in data:
            data = dict(data)
            data["actions"] = data.pop("steps")
        return data

    @field_validator("actions")
    @classmethod
    def _step_ids(cls, steps: list[Step]) -> list[Step]:
        seen: set[str] = set()
        for index, step in enumerate(steps):
            if step.id is None:
                step.id = f"step{index + 1}"
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        return steps

    def stores(self) -> list[str] | None:
        """The store hashes this recipe is limited to, or ``None`` for every store."""
        if self.store == "*":
            return None
        return [self.store] if isinstance(self.store, str) else list(self.store)

    def document(self) -> dict[str, Any]:
        """The JSON document, as YAML files and the API carry it."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def step_uses(steps: object) -> list[str]:
    """The ``use`` of every step of a document's ``actions``, those inside ``for_each`` and
    ``parallel`` steps too, in order (read from the raw document: it may not be valid yet)."""
    if not isinstance(steps, list):
        return []
    found: list[str] = []
    for step in steps:
        if not isinstance(step, dict):
            continue
        if isinstance(step.get("use"), str):
            found.append(step["use"])
        found += step_uses(step.get("steps"))
        branches = step.get("parallel")
        for branch in branches.values() if isinstance(branches, dict) else ():
            found += step_uses(branch)
    return found
