"""A BigCommerce store simulator: the v2/v3 REST API Sous's connector uses, served by FastAPI.

Stores live under ``/stores/{store_hash}/v2/...`` and ``/v3/...``, so
``http://127.0.0.1:PORT/stores/{hash}`` stands in for ``https://api.bigcommerce.com/stores/{hash}``.
Control endpoints for tests and benchmarks are under ``/_sim``; README.md documents them.

    app = create_simulator(SimulatorConfig(clock=ManualClock()))
    sim = simulator_of(app)
    ...
    await sim.deliveries.drain()

Run it alone with ``python -m connectors.bigcommerce.simulator --port 8787``.
"""

from .app import create_simulator, simulator_of
from .config import FaultSettings, SimulatorConfig
from .shoppers import Line, PurchaseRefused
from .simulator import Simulator
from .state import Store

__all__ = [
    "FaultSettings",
    "Line",
    "PurchaseRefused",
    "Simulator",
    "SimulatorConfig",
    "Store",
    "create_simulator",
    "simulator_of",
]
