"""Retry policies, declared per step (with a default per action kind)."""

from __future__ import annotations

import random
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class RetryOn(StrEnum):
    """Which failures a policy retries."""

    TIMEOUT = "timeout"
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    RETRYABLE = "retryable"  # any RetryableError raised by a connector, including Retry(defer=)


class RetryPolicy(BaseModel):
    """How often and how patiently a step is tried again.

    ``tries`` counts the first attempt: ``tries=1`` means never retry. Delays grow as
    ``backoff * factor ** (attempt - 1)``, capped at ``cap``; ``jitter`` adds up to that share of
    the delay at random so that many runs failing together do not retry together.
    """

    model_config = ConfigDict(extra="forbid")

    tries: int = Field(default=3, ge=1, le=50)
    backoff: float = Field(default=1.0, ge=0, description="first delay, in seconds")
    factor: float = Field(default=2.0, ge=1)
    cap: float = Field(default=300.0, ge=0, description="longest delay, in seconds")
    jitter: float = Field(default=0.1, ge=0, le=1)
    on: list[RetryOn] = Field(default_factory=lambda: list(RetryOn))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.cap, self.backoff * self.factor ** max(0, attempt - 1))
        if self.jitter:
            base += base * self.jitter * (rng or random).random()
        return base
