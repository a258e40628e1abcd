"""``python -m connectors.bigcommerce.simulator --port 8787 [--quota 150]``: serve the simulator."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from .app import create_simulator, simulator_of
from .config import FaultSettings, SimulatorConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.bigcommerce.simulator",
        description="Serve a simulated BigCommerce store API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--quota", type=int, default=150, help="requests per window per store")
    parser.add_argument("--window-ms", type=int, default=30_000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--webhook-time-scale", type=float, default=1.0)
    parser.add_argument("--no-seed", action="store_true", help="start without the demo store")
    args = parser.parse_args(argv)
    config = SimulatorConfig(
        quota=args.quota,
        window_ms=args.window_ms,
        seed=not args.no_seed,
        faults=FaultSettings(latency_ms=args.latency_ms, error_rate=args.error_rate),
        webhook_time_scale=args.webhook_time_scale,
    )
    app = create_simulator(config)
    sim = simulator_of(app)
    root = f"http://{args.host}:{args.port}"
    print(f"BigCommerce simulator on {root}  (control API: {root}/_sim)")
    if config.seed:
        store = sim.demo_store
        print(f"base URL:     {root}/stores/{store.store_hash}")
        print(f"store hash:   {store.store_hash}")
        print(f"X-Auth-Token: {store.access_token}")
    sys.stdout.flush()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
