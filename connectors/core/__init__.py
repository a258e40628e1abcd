"""Built-in triggers and actions that need no outside system.

- ``custom.*``: events sent through the API (``POST /v1/events``) or an incoming webhook; the
  part after ``custom.`` is the merchant's own name (``custom.erp_stock_sync``).
- ``core.set``: returns its parameters as its output, rendered — build a message or a value
  once and use it in later steps as ``steps.<id>.<name>``.
- ``core.log``: writes a line to the log (and the run trace).
- ``core.emit``: sends a custom event, caused by this run (loop protection applies).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.context import ActionContext
from engine.events import NewEvent
from engine.registry import ActionSpec, Connector, Params, TriggerSpec
from engine.retry import RetryPolicy

log = logging.getLogger("sous.core")


class SetParams(BaseModel):
    """Any fields: each is rendered and returned as the step's output."""

    model_config = ConfigDict(extra="allow")


class LogParams(Params):
    message: str = Field(max_length=10_000)
    level: str = Field(default="info", pattern="^(debug|info|warning|error)$")


class LogOutput(BaseModel):
    message: str


class EmitParams(Params):
    name: str = Field(pattern=r"^[a-z0-9_]{1,80}$", description="The event is custom.<name>")
    payload: dict[str, Any] = Field(default_factory=dict)


class EmitOutput(BaseModel):
    type: str


async def _set(ctx: ActionContext, params: SetParams) -> dict[str, Any]:
    return dict(params.model_extra or {})


async def _log(ctx: ActionContext, params: LogParams) -> LogOutput:
    log.log(logging.getLevelName(params.level.upper()), "[%s/%s] %s", ctx.run_id, ctx.step_id, params.message)
    return LogOutput(message=params.message)


async def _emit(ctx: ActionContext, params: EmitParams) -> EmitOutput:
    type_ = f"custom.{params.name}"
    await ctx.emit(NewEvent(type=type_, payload=params.payload, dedup_key=f"{ctx.idempotency_key}:emit"))
    return EmitOutput(type=type_)


CONNECTOR = Connector(
    name="core",
    description="Built-in steps and custom events",
    triggers=(
        TriggerSpec(
            type="custom.*",
            description="A custom event sent through the API or an incoming webhook: custom.<name>",
            sample={"product": {"id": 123, "name": "Cat Eye Sunglasses", "inventory_level": 0}},
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
    ),
)
