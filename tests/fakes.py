"""A recording connector for engine tests: actions that remember what they were asked to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from engine.context import ActionContext
from engine.errors import PermanentError, Retry, RetryableError
from engine.model.retry import RetryPolicy
from engine.registry import ActionSpec, Connector, Params, TriggerSpec


@dataclass
class Recorder:
    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    """step id → how many more times ``test.flaky`` fails for it."""

    def named(self, action: str) -> list[dict[str, Any]]:
        return [p for a, p, _ in self.calls if a == action]


class RecordParams(Params):
    message: str = ""
    count: int = Field(default=0, ge=0)
    data: dict[str, Any] = Field(default_factory=dict)


class RecordOutput(BaseModel):
    echoed: str
    count: int


class FlakyParams(Params):
    mode: str = Field(default="retryable", pattern="^(retryable|defer|permanent)$")


class StockPayload(BaseModel):
    product: dict[str, Any]


def recording_connector(recorder: Recorder) -> Connector:
    async def record(ctx: ActionContext, params: RecordParams) -> RecordOutput:
        recorder.calls.append(("test.record", params.model_dump(), ctx.idempotency_key))
        return RecordOutput(echoed=params.message, count=params.count)

    async def flaky(ctx: ActionContext, params: FlakyParams) -> dict[str, Any]:
        recorder.calls.append(("test.flaky", params.model_dump(), ctx.idempotency_key))
        left = recorder.failures.get(ctx.step_id, 0)
        if left > 0:
            recorder.failures[ctx.step_id] = left - 1
            if params.mode == "permanent":
                raise PermanentError("the remote side refused it")
            if params.mode == "defer":
                raise Retry(defer=30, reason="busy")
            raise RetryableError("temporary failure")
        return {"ok": True, "attempt": ctx.attempt}

    return Connector(
        name="test",
        description="recording actions for tests",
        triggers=(
            TriggerSpec(
                type="test.stock",
                description="stock changed",
                payload=StockPayload,
                sample={"product": {"id": 1}},
            ),
        ),
        actions=(
            ActionSpec(
                name="test.record",
                description="record a call",
                params=RecordParams,
                output=RecordOutput,
                handler=record,
                writes="a row in the recorder",
            ),
            ActionSpec(
                name="test.flaky",
                description="fail a set number of times",
                params=FlakyParams,
                handler=flaky,
                retry=RetryPolicy(tries=3, backoff=10, jitter=0),
            ),
        ),
    )
