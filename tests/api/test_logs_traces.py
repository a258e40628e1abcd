"""Structured logs and traces through the API: JSON lines with the request, event and run ids,
at the configured level; OpenTelemetry spans around ingest, runs, steps and store requests."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine import Engine
from sous.logs import configure_logging
from tests.api.conftest import product, recipe

Client = httpx.AsyncClient
Headers = dict[str, str]
LOGGING = recipe(
    actions=[{"id": "say", "use": "core.log", "with": {"message": "{{ product.name }} is out"}}]
)


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


async def _fire(client: Client, admin: Headers, engine: Engine) -> dict[str, Any]:
    await client.post("/v1/recipes", json=LOGGING, headers=admin)  # 409 the second time
    sent = await client.post(
        "/v1/events",
        json={"type": "test.stock", "payload": product(0)},
        headers=admin | {"X-Request-Id": "req-from-client"},
    )
    assert sent.status_code == 202, sent.text
    await engine.drain()
    return sent.json()  # type: ignore[no-any-return]


async def test_json_logs_carry_request_event_and_run_ids(
    client: Client, admin: Headers, engine: Engine, logs: io.StringIO
) -> None:
    configure_logging("debug", "json", stream=logs)
    sent = await _fire(client, admin, engine)
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    stored = next(line for line in lines if line["message"].startswith(f"event {sent['event_id']}"))
    assert stored["request_id"] == "req-from-client"
    assert stored["event_id"] == sent["event_id"] and stored["level"] == "debug"
    said = next(line for line in lines if line["message"].endswith("Cat Eye Sunglasses is out"))
    assert said["run_id"] == sent["runs"][0] and said["event_id"] == sent["event_id"]
    assert {"time", "level", "logger"} <= set(said)


async def test_the_configured_level_holds_back_lower_lines(
    client: Client, admin: Headers, engine: Engine, logs: io.StringIO
) -> None:
    configure_logging("warning", "text", stream=logs)
    await _fire(client, admin, engine)
    assert "is out" not in logs.getvalue() and "stored" not in logs.getvalue()
    configure_logging("info", "text", stream=logs)
    sent = await _fire(client, admin, engine)
    said = [line for line in logs.getvalue().splitlines() if "is out" in line]
    assert len(said) == 1 and f"run_id={sent['runs'][0]}" in said[0]


def test_log_settings_are_read_from_the_environment_and_checked(tmp_path: Path) -> None:
    sous = str(Path(sys.executable).parent / "sous")
    env = os.environ | {"SOUS_LOG_LEVEL": "loud"}
    refused = subprocess.run([sous, "schema"], capture_output=True, text=True, env=env)
    assert refused.returncode == 1
    assert "SOUS_LOG_LEVEL is 'loud'; use one of debug, info, warning, error" in refused.stderr


async def test_spans_around_ingest_runs_steps_and_store_requests(
    client: Client, admin: Headers, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from connectors.bigcommerce.client import BigCommerceClient

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # The global provider can be set once per process: hand out this one (and its tracer) instead.
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    monkeypatch.setattr(trace, "get_tracer", lambda *_, **__: provider.get_tracer("test"))
    sent = await _fire(client, admin, engine)
    shop = httpx.MockTransport(lambda _: httpx.Response(200, json={"data": {"id": 1}}))
    async with BigCommerceClient("abc123", "t", transport=shop) as store:
        await store.request("GET", "catalog/products/1")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert {"sous.ingest", "sous.run", "sous.step", "sous.store_request"} <= set(spans)
    attributes = {name: dict(s.attributes or {}) for name, s in spans.items()}
    assert attributes["sous.ingest"]["request_id"] == "req-from-client"
    assert attributes["sous.ingest"]["event_id"] == sent["event_id"]
    assert attributes["sous.run"]["run_id"] == sent["runs"][0]
    assert attributes["sous.step"]["action"] == "core.log"
    parent, run = spans["sous.step"].parent, spans["sous.run"].get_span_context()
    assert parent is not None and run is not None and parent.span_id == run.span_id
    assert attributes["sous.store_request"]["path"] == "/v3/catalog/products/1"


def test_spans_are_a_no_op_without_opentelemetry() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"  # as if the extra were not installed
        "from engine import observe\n"
        "with observe.work('run', event_id='evt_1', run_id='run_1'):\n"
        "    print(observe.current_ids())\n"
        "print(observe._trace, observe.current_ids())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.splitlines() == ["{'event_id': 'evt_1', 'run_id': 'run_1'}", "None {}"]


def test_library_chatter_is_held_back_below_debug(logs: io.StringIO) -> None:
    configure_logging("info", "text", stream=logs)
    logging.getLogger("apscheduler.executors.default").info('Running job "Scheduler._wake"')
    logging.getLogger("sous.engine").info("a line of Sous's own")
    assert "Scheduler._wake" not in logs.getvalue()
    assert "a line of Sous's own" in logs.getvalue()
    configure_logging("debug", "text", stream=logs)
    logging.getLogger("apscheduler.executors.default").debug("next wake-up in 60 s")
    assert "next wake-up" in logs.getvalue()
