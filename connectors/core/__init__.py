"""Built-in triggers and actions that need no outside system.

- ``custom.*``: events sent through the API (``POST /v1/events``) or an incoming webhook; the
  part after ``custom.`` is the merchant's own name (``custom.erp_stock_sync``).
- ``core.set``: returns its parameters as its output, rendered — build a message or a value
  once and use it in later steps as ``steps.<id>.<name>``.
- ``core.log``: writes a line to the log (and the run trace).
- ``core.emit``: sends a custom event, caused by this run (loop protection applies).
- ``core.aggregate``: counts a list (an earlier step's output) and sums, averages, finds the
  least and the most of a number in each item (``total_inc_tax`` of listed orders).
- ``core.for_each`` (written ``for_each:`` in a recipe): runs its ``steps`` once per item of a
  list, with ``item`` and ``index`` in scope, up to ``max_items``, durably (see
  :mod:`engine.run.foreach`).
- ``core.parallel`` (written ``parallel:`` in a recipe): runs named branches of steps at the same
  time and joins their outputs (``{branch: {step id: output}}``), durably (see
  :mod:`engine.run.parallel`).
- ``core.wait``: pauses the run for a duration (``for: 3d``) or until a time (``until:``), up to
  90 days, durably (see :mod:`engine.run.waits`); ``recheck: true`` checks the recipe's conditions
  again on a refreshed payload before going on.
- ``core.approval``: pauses the run until a person approves or rejects (the console, the API, or
  signed links e-mailed to ``to``), with a timeout and a default decision, durably (see
  :mod:`connectors.core.approval` and :mod:`engine.run.approval`).
- ``core.call_recipe``: starts a run of another recipe of the workspace (whose trigger is
  ``sous.recipe.called``) with ``input`` as its event's payload and, by default, waits for it to
  end (up to ``timeout``), durably; its output is the called run's id, status and ``result``
  (see :mod:`engine.run.calls`).
- ``sous.recipe.disabled`` / ``sous.recipe.flooded``: Sous telling a workspace that it switched
  a failing recipe off, or held a recipe's runs beyond its flood limit; recipes can e-mail
  about them.
- ``sous.run.failed``: a run failed (its recipe, the step, the error and a link to the run); the
  workspace's alert address is told as well, without any recipe (``connectors/email/alerts.py``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.core import approval
from engine import (
    CALLED,
    MAX_WAIT,
    SLUG,
    ActionContext,
    ActionSpec,
    Connector,
    NewEvent,
    Params,
    PermanentError,
    RecipeCalls,
    RetryPolicy,
    TriggerSpec,
    Wait,
    parse_duration,
)

log = logging.getLogger("sous.core")


class SetParams(BaseModel):
    """Any fields: each is rendered and returned as the step's output."""

    model_config = ConfigDict(extra="allow")


class LogParams(Params):
    message: str = Field(max_length=10_000)
    level: str = Field(default="info", pattern="^(debug|info|warning|error)$")


class LogOutput(BaseModel):
    message: str


class ForEachParams(Params):
    """What a ``for_each`` step holds besides its ``steps`` (written on the step itself, not in
    ``with:``)."""

    for_each: list[Any] = Field(
        description="The items: a list, or a template that renders to one",
        examples=[["{{ order.lines }}"]],
    )
    max_items: int = Field(default=50, ge=1, le=999, description="At most this many items run")
    on_overflow: str = Field(
        default="truncate",
        pattern="^(truncate|fail)$",
        description="More items than max_items: run the first ones (and say so), or fail",
    )


class ForEachOutput(BaseModel):
    """``steps.<id>.results[i].<sub-step id>.<field>``: each item's sub-step outputs."""

    count: int = Field(description="Items run", examples=[3])
    total: int = Field(description="Items the list had", examples=[3])
    truncated: bool = Field(description="The list had more than max_items", examples=[False])
    note: str | None = Field(default=None, description="Why fewer items ran than the list had")
    results: list[dict[str, Any]] = Field(
        description="Per item: its steps' outputs by step id",
        examples=[[{"tag": {"message": "line 77"}}]],
    )


class ParallelParams(Params):
    """What a ``parallel`` step holds (written on the step itself, not in ``with:``)."""

    parallel: dict[str, list[dict[str, Any]]] = Field(
        description="Named branches (2-10; names: lowercase letters, digits and _), each a list "
        "of 1-20 steps run in order; the branches run at the same time",
        examples=[
            {
                "email_staff": [{"id": "mail", "use": "email.send", "with": {}}],
                "note": [{"id": "add", "use": "bigcommerce.order.add_note", "with": {}}],
            }
        ],
    )
    fail_fast: bool = Field(
        default=False,
        description="A failed branch stops the others at their next step; by default the "
        "others run to their end, then the step fails",
    )


class ParallelOutput(BaseModel):
    """``steps.<id>.<branch>.<step id>.<field>``: each branch's step outputs (the join)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "email_staff": {"mail": {"sent": True}},
                    "note": {"add": {"order_id": 100}},
                }
            ]
        },
    )


class EmitParams(Params):
    name: str = Field(pattern=r"^[a-z0-9_]{1,80}$", description="The event is custom.<name>")
    payload: dict[str, Any] = Field(default_factory=dict)


class EmitOutput(BaseModel):
    type: str


class WaitParams(Params):
    """Exactly one of ``for`` (a duration) and ``until`` (a time)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    for_: str | float | None = Field(
        default=None, alias="for", description="how long: '90s', '2h30m', '3d' or seconds"
    )
    until: datetime | None = Field(default=None, description="when to go on (ISO 8601)")
    recheck: bool = Field(
        default=False,
        description="after the wait, refresh the payload and check the recipe's conditions "
        "again; the run ends skipped if one no longer holds",
    )

    @field_validator("for_")
    @classmethod
    def _length(cls, value: str | float | None) -> str | float | None:
        if value is None:
            return value
        try:
            length = parse_duration(value)
        except (OverflowError, ValueError):
            raise ValueError(f"not a duration: {value!r} (try '90s', '2h30m' or '14d')") from None
        if not timedelta(0) <= length <= MAX_WAIT:
            raise ValueError(f"a wait lasts from 0 to {MAX_WAIT.days} days")
        return value

    @model_validator(mode="after")
    def _one(self) -> WaitParams:
        if (self.for_ is None) == (self.until is None):
            raise ValueError("give exactly one of `for` (a duration) and `until` (a time)")
        return self


class WaitOutput(BaseModel):
    until: str
    since: str | None = None
    waited_s: float | None = None
    recheck: dict[str, Any] | None = None


MAX_CALL_WAIT = timedelta(days=7)


class CallRecipeParams(Params):
    recipe: str = Field(
        pattern=SLUG,
        description="The id of the recipe to run, in this workspace; its trigger must be "
        "sous.recipe.called",
        examples=["notify-warehouse"],
    )
    input: dict[str, Any] = Field(
        default_factory=dict,
        description="The called run's event payload (templates rendered); `caller` is Sous's",
        examples=[{"order_id": "{{ order.id }}"}],
    )
    wait: bool = Field(default=True, description="Wait for the called run to end")
    timeout: str | float = Field(
        default="1h",
        description="How long to wait: '90s', '2h', '3d' or seconds (at most 7 days); past "
        "it the called run is cancelled and the step fails",
    )

    @field_validator("input")
    @classmethod
    def _no_caller(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "caller" in value:
            raise ValueError("`caller` is set by Sous (the calling run); name the field otherwise")
        return value

    @field_validator("timeout")
    @classmethod
    def _bounded(cls, value: str | float) -> str | float:
        try:
            length = parse_duration(value)
        except (OverflowError, ValueError):
            raise ValueError(f"not a duration: {value!r} (try '90s', '2h' or '3d')") from None
        if not timedelta(seconds=1) <= length <= MAX_CALL_WAIT:
            raise ValueError(f"a call waits from 1 second to {MAX_CALL_WAIT.days} days")
        return value


class CallRecipeOutput(BaseModel):
    """``steps.<id>.result.<step id>.<field>``: what the called run's steps returned."""

    run_id: str = Field(description="The called run", examples=["run_01J0CALLED"])
    recipe: str = Field(description="The called recipe's id", examples=["notify-warehouse"])
    status: str = Field(
        description="The called run's status (queued or running when not waiting)",
        examples=["succeeded"],
    )
    reason: str | None = Field(default=None, description="Why it ended so, when it says")
    result: dict[str, Any] | None = Field(
        default=None,
        description="When waiting: the outputs of the called run's steps by step id",
        examples=[{"tell": {"message": "order 100 is ready to pick"}}],
    )


class CalledPayload(BaseModel):
    """``sous.recipe.called``: the caller's ``input`` fields, and ``caller``."""

    model_config = ConfigDict(extra="allow")

    caller: dict[str, Any] = Field(
        description="run_id, recipe and step of the calling run, and depth (1: called by a "
        "recipe that was not called itself)"
    )


class RecipeNotice(BaseModel):
    """``sous.recipe.disabled`` and ``sous.recipe.flooded``."""

    recipe: dict[str, Any] = Field(description="uid, id, name, version")
    reason: str
    details: dict[str, Any] = Field(default_factory=dict)


class FailedRecipe(BaseModel):
    uid: str
    id: str
    name: str
    version: int | None = None


class FailedRun(BaseModel):
    id: str
    url: str = Field(description="The run's page in the console")


class FailedStep(BaseModel):
    id: str
    use: str = Field(description="The action the step uses")
    index: int
    attempts: int = Field(description="Attempts made before giving up")


class FailedEvent(BaseModel):
    id: str
    type: str


class RunFailed(BaseModel):
    """``sous.run.failed``: a run ended ``failed`` at one of its steps."""

    recipe: FailedRecipe
    run: FailedRun
    step: FailedStep
    error: str = Field(description="The step's error, secrets masked")
    event: FailedEvent = Field(description="The event the run was started by")
    store: str | None = None


class AggregateParams(Params):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"items": "{{ steps.orders.orders }}", "field": "total_inc_tax"}]
        },
    )
    items: list[Any] = Field(max_length=10_000, description="a list, e.g. steps.ID.orders")
    field: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$",
        description="the number to add up in each item, a dotted path (none: count only)",
    )


class AggregateOutput(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"count": 3, "sum": 412.5, "min": 42.0, "max": 250.0, "average": 137.5}]
        }
    )
    count: int = Field(description="items in the list")
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    average: float | None = None
    missing: int = Field(default=0, description="items without a number at `field`")


def _number_at(item: Any, path: str) -> float | None:
    for part in path.split("."):
        if not isinstance(item, dict):
            return None
        item = item.get(part)
    if isinstance(item, bool) or item is None:
        return None
    try:
        return float(item)
    except (TypeError, ValueError):
        return None


async def _aggregate(ctx: ActionContext, params: AggregateParams) -> AggregateOutput:
    if params.field is None:
        return AggregateOutput(count=len(params.items))
    numbers = [n for n in (_number_at(i, params.field) for i in params.items) if n is not None]
    if not numbers:
        return AggregateOutput(count=len(params.items), missing=len(params.items))
    total = sum(numbers)
    return AggregateOutput(
        count=len(params.items),
        sum=round(total, 6),
        min=min(numbers),
        max=max(numbers),
        average=round(total / len(numbers), 6),
        missing=len(params.items) - len(numbers),
    )


async def _set(ctx: ActionContext, params: SetParams) -> dict[str, Any]:
    return dict(params.model_extra or {})


async def _for_each(ctx: ActionContext, params: ForEachParams) -> ForEachOutput:
    raise PermanentError("core.for_each runs as a for_each step (for_each: and steps:)")


async def _parallel(ctx: ActionContext, params: ParallelParams) -> ParallelOutput:
    raise PermanentError("core.parallel runs as a parallel step (parallel: {branch: [steps]})")


async def _call_recipe(ctx: ActionContext, params: CallRecipeParams) -> dict[str, Any]:
    length = parse_duration(params.timeout)
    calls = ctx.services.get(RecipeCalls)
    return await calls.call(ctx, params.recipe, params.input, params.wait, length)


async def _log(ctx: ActionContext, params: LogParams) -> LogOutput:
    log.log(
        logging.getLevelName(params.level.upper()),
        "[%s/%s] %s",
        ctx.run_id,
        ctx.step_id,
        params.message,
    )
    return LogOutput(message=params.message)


async def _emit(ctx: ActionContext, params: EmitParams) -> EmitOutput:
    type_ = f"custom.{params.name}"
    await ctx.emit(
        NewEvent(type=type_, payload=params.payload, dedup_key=f"{ctx.idempotency_key}:emit")
    )
    return EmitOutput(type=type_)


async def _wait(ctx: ActionContext, params: WaitParams) -> WaitOutput:
    now = ctx.clock.now()
    if params.for_ is not None:
        until = now + parse_duration(params.for_)
    else:
        assert params.until is not None
        until = params.until if params.until.tzinfo else params.until.replace(tzinfo=UTC)
    if until - now > MAX_WAIT:
        raise PermanentError(
            f"waits are limited to {MAX_WAIT.days} days; {until.isoformat()} is later"
        )
    raise Wait(until, params.recheck)


_NOTICE_SAMPLE = {
    "recipe": {"uid": "rcp_0", "id": "sold-out-alert", "name": "Tell staff", "version": 3},
    "reason": "9 of the last 10 runs within 1h failed",
    "details": {"runs": 10, "failed": 9},
}

_CALLED_SAMPLE = {
    "order_id": 100,
    "caller": {"run_id": "run_0", "recipe": "new-order", "step": "notify", "depth": 1},
}

_RUN_FAILED_SAMPLE = {
    "recipe": {"uid": "rcp_0", "id": "sold-out-alert", "name": "Tell staff", "version": 3},
    "run": {"id": "run_0", "url": "https://sous.example/console/runs/run_0"},
    "step": {"id": "mail", "use": "email.send", "index": 1, "attempts": 5},
    "error": "cannot reach SMTP server mail.example:587: Connection refused",
    "event": {"id": "evt_0", "type": "bigcommerce.product.out_of_stock"},
    "store": "abc123",
}

CONNECTOR = Connector(
    name="core",
    description="Built-in steps and custom events",
    triggers=(
        TriggerSpec(
            type="custom.*",
            description="A custom event sent through the API or an incoming webhook: custom.<name>",
            sample={"product": {"id": 123, "name": "Cat Eye Sunglasses", "inventory_level": 0}},
        ),
        TriggerSpec(
            type="sous.recipe.disabled",
            description="Sous switched a recipe off because most of its recent runs failed",
            payload=RecipeNotice,
            sample=_NOTICE_SAMPLE,
        ),
        TriggerSpec(
            type="sous.recipe.flooded",
            description="A recipe started more runs than its flood limit allows; the extra runs "
            "are held until released or discarded (once per window)",
            payload=RecipeNotice,
            sample={**_NOTICE_SAMPLE, "reason": "more than 100 runs in 1m"},
        ),
        TriggerSpec(
            type=CALLED,
            description="Another recipe of the workspace called this one (core.call_recipe): "
            "the payload is its input, with caller",
            payload=CalledPayload,
            sample=_CALLED_SAMPLE,
        ),
        TriggerSpec(
            type="sous.run.failed",
            description="A run failed: its recipe, the step, the error and a link to the run "
            "(never for the recipe's own failure on this trigger)",
            payload=RunFailed,
            sample=_RUN_FAILED_SAMPLE,
        ),
    ),
    actions=(
        ActionSpec(
            name="core.set",
            description="Render values once and hand them to later steps as this step's output",
            params=SetParams,
            handler=_set,
            retry=RetryPolicy(tries=1),
        ),
        ActionSpec(
            name="core.log",
            description="Write a line to the log and the run trace",
            params=LogParams,
            output=LogOutput,
            handler=_log,
            retry=RetryPolicy(tries=1),
        ),
        ActionSpec(
            name="core.emit",
            description="Send a custom event (custom.<name>) caused by this run",
            params=EmitParams,
            output=EmitOutput,
            handler=_emit,
            writes="a new custom event in this workspace",
        ),
        ActionSpec(
            name="core.aggregate",
            description="Count a list and add up, average, and find the least and most of a "
            "number in its items (an earlier step's list)",
            params=AggregateParams,
            output=AggregateOutput,
            handler=_aggregate,
            retry=RetryPolicy(tries=1),
        ),
        ActionSpec(
            name="core.for_each",
            description="Run steps once per item of a list (an order's lines, a query's "
            "results), with item and index in scope, up to max_items; each item's steps are "
            "traced and keyed on their own and done once across restarts",
            params=ForEachParams,
            output=ForEachOutput,
            handler=_for_each,
            retry=RetryPolicy(tries=1),
        ),
        ActionSpec(
            name="core.parallel",
            description="Run named branches of steps at the same time (e-mail staff while "
            "noting the order) and join their outputs; the steps of a branch run in order, "
            "each traced and keyed on its own and done once across restarts; the step fails "
            "when a branch does (fail_fast: at once)",
            params=ParallelParams,
            output=ParallelOutput,
            handler=_parallel,
            retry=RetryPolicy(tries=1),
        ),
        ActionSpec(
            name="core.call_recipe",
            description="Run another recipe of this workspace (trigger sous.recipe.called) with "
            "an input and, unless wait is false, wait for it to end and return its result; a "
            "called run that fails fails the step; done once across restarts",
            params=CallRecipeParams,
            output=CallRecipeOutput,
            handler=_call_recipe,
            writes="a run of another recipe in this workspace",
            retry=RetryPolicy(tries=1),
        ),
        ActionSpec(
            name="core.wait",
            description="Pause the run for a duration or until a time (up to 90 days), then go "
            "on; with recheck, only if the recipe's conditions still hold",
            params=WaitParams,
            output=WaitOutput,
            handler=_wait,
            retry=RetryPolicy(tries=5, backoff=30, cap=3600),
        ),
        approval.ACTION,
    ),
)
