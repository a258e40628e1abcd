"""The simulator over real HTTP: uvicorn on loopback, and ``python -m`` on its own."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from connectors.bigcommerce.simulator import SimulatorConfig, create_simulator, simulator_of
from connectors.bigcommerce.simulator.__main__ import main
from sous.sandbox import free_port
from tests.servers import serve

from .spec_check import SpecLog, check_response

ROOT = Path(__file__).resolve().parents[4]


async def test_real_http_server_answers_like_the_in_process_app(clock):
    app = create_simulator(SimulatorConfig(clock=clock))
    log = SpecLog()
    async with serve(app, lifespan="on", start_timeout=20) as url:
        headers = {"X-Auth-Token": "sim-demo-token", "Accept": "application/json"}
        async with httpx.AsyncClient(base_url=f"{url}/stores/sousdemo", headers=headers) as api:
            products = await api.get("/v3/catalog/products", params={"keyword": "cat eye"})
            orders = await api.get("/v2/orders", params={"limit": 2})
            refused = await api.get("/v2/orders", headers={"X-Auth-Token": "nope"})
        for response in (products, orders, refused):
            check_response(response, log)
        async with httpx.AsyncClient(base_url=url) as control:
            placed = await control.post(
                "/_sim/stores/sousdemo/orders", json={"lines": [{"product_id": 111}]}
            )
    assert [p["name"] for p in products.json()["data"]] == ["Cat Eye Sunglasses"]
    assert len(orders.json()) == 2
    assert refused.status_code == 401
    assert products.headers["x-rate-limit-requests-quota"] == "150"
    assert placed.status_code == 201
    assert placed.json()["order"]["products"]["url"].startswith(url)
    assert [s for *_, s, _ in log.checked] == [200, 200, 401]
    assert simulator_of(app).demo_store.counters.requests == 3


def test_main_prints_the_base_url_hash_and_token(monkeypatch, capsys):
    served: dict[str, Any] = {}

    def fake_run(app, host: str, port: int, log_level: str) -> None:
        served.update(app=app, host=host, port=port)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    assert main(["--port", "8899", "--quota", "40", "--error-rate", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8899/stores/sousdemo" in out
    assert "store hash:   sousdemo" in out
    assert "X-Auth-Token: sim-demo-token" in out
    sim = simulator_of(served["app"])
    assert (sim.config.quota, sim.faults.error_rate, served["port"]) == (40, 0.1, 8899)


async def test_python_dash_m_serves_on_its_own():
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connectors.bigcommerce.simulator", "--port", str(port),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = [
            (await asyncio.wait_for(process.stdout.readline(), 30)).decode() for _ in range(4)
        ]
        assert f"http://127.0.0.1:{port}/stores/sousdemo" in "".join(banner)
        r: httpx.Response | None = None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(200):  # the banner is printed just before the socket opens
                try:
                    r = await client.get(
                        "/stores/sousdemo/v2/time", headers={"X-Auth-Token": "sim-demo-token"}
                    )
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.02)
        assert r is not None
        assert r.status_code == 200
    finally:
        process.terminate()
        await process.wait()
