"""Settings of a simulator instance (:class:`SimulatorConfig`) and its run-time fault knobs."""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict, Field, SkipValidation

from engine import Clock

#: BigCommerce's published retry schedule, in seconds after the previous attempt (11 retries).
RETRY_SCHEDULE_S: tuple[int, ...] = (60, 180, 300, 600, 900, 1800, 3600, 7200, 21600, 50400, 86400)


class FaultSettings(BaseModel):
    """Injected trouble, changeable at run time through ``PUT /_sim/faults``.

    ``latency_ms`` delays every store API request (on the simulator's clock). ``error_rate`` is the
    share of store API requests answered with ``error_status`` instead of being handled; with
    ``error_after_commit`` the request is handled first and the error replaces its response (the
    write happened, the client cannot tell), which is how duplicate-write bugs are caught.
    """

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_status: int = Field(default=503, ge=500, le=599)
    error_after_commit: bool = False


class SimulatorConfig(BaseModel):
    """How a simulator instance behaves. The defaults mimic a Standard plan store."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    quota: int = Field(default=150, ge=1, description="Requests per window, per store.")
    window_ms: int = Field(default=30_000, ge=1, description="Rate-limit window length.")
    seed: bool = Field(default=True, description="Create the demo store at start-up.")
    demo_store_hash: str = "sousdemo"
    demo_access_token: str = "sim-demo-token"  # noqa: S105 - a sandbox credential, printed on start
    demo_client_id: str = "sim-demo-client"
    demo_client_secret: str = "sim-demo-secret"  # noqa: S105
    faults: FaultSettings = Field(default_factory=FaultSettings)
    random_seed: int | None = Field(
        default=0, description="Seed for fault injection; None: random."
    )
    webhook_time_scale: float = Field(
        default=1.0, gt=0, description="Multiplies the webhook retry delays (0.001 for tests)."
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="Per-attempt HTTP timeout.")
    webhook_workers: int = Field(default=1, ge=1, description="Concurrent first-attempt senders.")
    webhook_signing: bool = Field(
        default=True, description="Add Standard Webhooks signature headers (client secret key)."
    )
    require_https_destinations: bool = Field(
        default=False, description="Refuse hook destinations that are not https on port 443."
    )
    clock: SkipValidation[Clock | None] = Field(
        default=None, description="Time source; SystemClock when None."
    )
    webhook_transport: SkipValidation[httpx.AsyncBaseTransport | None] = Field(
        default=None, description="HTTP transport for deliveries (an httpx.MockTransport in tests)."
    )
    request_log_size: int = Field(default=100_000, ge=1)
