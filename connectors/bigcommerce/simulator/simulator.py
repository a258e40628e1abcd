"""The :class:`Simulator` object behind one app: state, clock, rate limiter, faults, deliveries."""

from __future__ import annotations

import random

from engine import Clock, SystemClock

from .apps import Apps
from .config import FaultSettings, SimulatorConfig
from .ratelimit import RateLimiter
from .state import SimulatorState, Store
from .webhooks import Deliveries


class Simulator:
    """Everything one simulated BigCommerce holds. Reach it with ``simulator_of(app)``."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.clock: Clock = self.config.clock or SystemClock()
        self.state = SimulatorState(self.clock.now, log_size=self.config.request_log_size)
        self.limiter = RateLimiter(self.clock, self.config.quota, self.config.window_ms)
        self.faults: FaultSettings = self.config.faults.model_copy()
        self.rng = random.Random(self.config.random_seed)
        self.deliveries = Deliveries(
            self.clock,
            time_scale=self.config.webhook_time_scale,
            timeout_s=self.config.webhook_timeout_s,
            workers=self.config.webhook_workers,
            signing=self.config.webhook_signing,
            transport=self.config.webhook_transport,
        )
        self.state.sink = self.deliveries.dispatch
        self.apps = Apps(self.clock.now, self.config.webhook_transport)
        """Single-click apps: registered apps, store users, installs (``apps.py``)."""
        if self.config.seed:
            from .seed import seed_demo_store

            seed_demo_store(self)

    def store(self, store_hash: str) -> Store:
        return self.state.stores[store_hash]

    @property
    def demo_store(self) -> Store:
        return self.state.stores[self.config.demo_store_hash]

    def add_store(self, *, seed: bool = False, name: str = "Sous Sandbox Store") -> Store:
        store = self.state.add_store(name=name)
        if seed:
            from .seed import seed_catalog

            seed_catalog(store)
        return store

    async def aclose(self) -> None:
        await self.deliveries.aclose()
