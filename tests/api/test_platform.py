"""Health, metrics, catalog, OpenAPI, CORS, size limit, the one error body, extension routers
and the live stream."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import SecretStr
from sqlalchemy.exc import OperationalError

from engine import Engine
from engine.model.events import NewEvent
from sous.container import Container
from tests.api.conftest import RECIPE, KeyFactory, StoreDouble, error_of, product

Client = httpx.AsyncClient
Headers = dict[str, str]


async def test_health_and_readiness(
    client: Client, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready", "database": "ok"}

    def down() -> None:
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    monkeypatch.setattr(container.db.engine, "connect", down)
    failed = await client.get("/readyz")
    assert failed.status_code == 503
    assert error_of(failed)["code"] == "unavailable"


async def test_metrics_in_prometheus_text(
    client: Client, admin: Headers, engine: Engine, container: Container
) -> None:
    container.stores = StoreDouble(metrics={"abc123": {"requests": 12, "rate_limited": 2}})
    await client.post("/v1/recipes", json={**RECIPE, "conditions": []}, headers=admin)
    await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = set(response.text.splitlines())
    assert "sous_events_total 1" in lines
    assert "sous_runs_started_total 1" in lines
    assert 'sous_run_status_changes_total{status="succeeded"} 1' in lines
    assert "sous_step_duration_seconds_count 2" in lines
    assert any(line.startswith('sous_step_duration_seconds{quantile="0.99"} ') for line in lines)
    assert "sous_queue_depth 0" in lines
    assert 'sous_connector_requests_total{connector="bigcommerce",store="abc123"} 12' in lines
    assert 'sous_connector_rate_limited_total{connector="bigcommerce",store="abc123"} 2' in lines
    assert "# TYPE sous_step_duration_seconds summary" in lines


async def test_metrics_are_for_this_machine_or_for_the_token(
    app: Any, container: Container, admin: Headers
) -> None:
    async def scrape(host: str, headers: dict[str, str] | None = None) -> httpx.Response:
        transport = httpx.ASGITransport(app, client=(host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://sous.test") as http:
            return await http.get("/metrics", headers=headers)

    assert (await scrape("127.0.0.1")).status_code == 200
    outside = await scrape("203.0.113.7", admin)  # an API key is no pass: metrics span workspaces
    assert outside.status_code == 403
    assert "SOUS_METRICS_TOKEN" in error_of(outside)["message"]
    container.settings.metrics_token = SecretStr("scrape-me")
    assert (await scrape("203.0.113.7", {"Authorization": "Bearer scrape-me"})).status_code == 200
    for wrong in ({"Authorization": "Bearer nope"}, None):
        assert (await scrape("203.0.113.7", wrong)).status_code == 401
        assert (await scrape("127.0.0.1", wrong)).status_code == 401  # the token binds all


async def test_catalog_lists_triggers_actions_and_operators(client: Client, admin: Headers) -> None:
    catalog = (await client.get("/v1/catalog", headers=admin)).json()
    triggers = {t["type"]: t for t in catalog["triggers"]}
    assert triggers["test.stock"]["sample"] == {"product": {"id": 1}}
    assert "product" in triggers["test.stock"]["payload_schema"]["properties"]
    assert "custom.*" in triggers
    actions = {a["name"]: a for a in catalog["actions"]}
    record = actions["test.record"]
    assert set(record["params_schema"]["properties"]) == {"message", "count", "data"}
    assert set(record["output_schema"]["properties"]) == {"echoed", "count"}
    assert record["writes"] == "a row in the recorder"
    assert actions["test.flaky"]["retry"]["tries"] == 3
    operators = {o["name"]: o for o in catalog["operators"]}
    assert operators["var"]["example"]["result"] == 12.5
    assert {"and", "in", "missing_some"} <= set(operators)
    schema = (await client.get("/v1/schema/recipe", headers=admin)).json()
    assert schema["$schema"].endswith("2020-12/schema")
    assert "test.record" in json.dumps(schema["$defs"]["Step"])


async def test_openapi_document_has_examples_for_every_request_body(client: Client) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    schemas = doc["components"]["schemas"]
    bodies = 0
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None:
                continue
            bodies += 1
            schema = content["schema"]
            ref = schema.get("$ref") or next(
                (s.get("$ref") for s in schema.get("anyOf", []) if "$ref" in s), None
            )
            target = schemas[ref.rsplit("/", 1)[1]] if ref else schema
            assert target.get("examples") or content.get("examples") or schema.get("examples"), (
                method,
                path,
            )
    assert bodies == 25  # POST and PATCH /v1/workspaces, recipes/{id}/copy, runs/bulk/*, approvals
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_cors_preflight_for_configured_origins(client: Client) -> None:
    allowed = await client.options(
        "/v1/recipes",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "If-Match",
        },
    )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    other = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


async def test_bodies_over_the_limit_are_413(client: Client, admin: Headers) -> None:
    big = {"type": "custom.x", "payload": {"blob": "x" * 300_000}}
    declared = await client.post("/v1/events", json=big, headers=admin)
    assert declared.status_code == 413
    assert error_of(declared)["code"] == "payload_too_large"

    async def chunks() -> Any:
        for _ in range(30):
            yield b"x" * 10_000

    streamed = await client.post(
        "/v1/events", content=chunks(), headers={**admin, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_every_error_has_the_one_body(client: Client, admin: Headers) -> None:
    route = await client.get("/v1/nothing-here", headers=admin)
    assert route.status_code == 404
    assert error_of(route)["code"] == "not_found"
    method = await client.patch("/v1/recipes", headers=admin)
    assert method.status_code == 405
    assert error_of(method)["code"] == "method_not_allowed"
    query = await client.get("/v1/events?limit=0", headers=admin)
    assert query.status_code == 422
    assert error_of(query)["details"][0]["path"] == "query.limit"
    not_json = await client.post(
        "/v1/events", content=b"{nope", headers={**admin, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    traced = await client.get("/v1/recipes/x", headers={**admin, "X-Request-ID": "trace-123"})
    assert traced.headers["x-request-id"] == "trace-123"
    assert error_of(traced)["request_id"] == "trace-123"


@pytest.fixture
def plugged(container: Container) -> None:
    packs = APIRouter(prefix="/v1/packs")
    webhooks = APIRouter(prefix="/v1/webhooks/bigcommerce")

    @packs.get("")
    def list_packs() -> dict[str, list[str]]:
        return {"data": ["starter"]}

    @packs.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    @packs.get("/locked")
    def locked() -> None:
        locked = sqlite3.OperationalError("database is locked")
        raise OperationalError("BEGIN IMMEDIATE", {}, locked)

    @webhooks.post("/{store}")
    def receive(store: str) -> dict[str, str]:
        return {"store": store}

    container.routers.extend([packs, webhooks])


@pytest.mark.usefixtures("plugged")
async def test_extension_routers_and_unexpected_errors(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await client.get("/v1/packs")).json() == {"data": ["starter"]}
    assert (await client.post("/v1/webhooks/bigcommerce/abc")).json() == {"store": "abc"}
    boom = await client.get("/v1/packs/boom")
    assert boom.status_code == 500
    error = error_of(boom)
    assert error["code"] == "internal_error"
    assert error["request_id"] == boom.headers["x-request-id"]
    assert "secret internals" not in boom.text
    assert "Traceback" not in boom.text
    assert "secret internals" in caplog.text
    # a passing database fault is not the client's nor a bug: 503, try again shortly
    locked = await client.get("/v1/packs/locked")
    assert locked.status_code == 503
    assert locked.headers["retry-after"] == "1"
    assert error_of(locked)["request_id"] == locked.headers["x-request-id"]
    assert "try again" in error_of(locked)["message"]


def parse(body: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for block in body.split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if not line.startswith(":") and ": " in line
        )
        if "event" in fields:
            found.append((fields["event"], json.loads(fields["data"])))
    return found


async def subscribed(engine: Engine, count: int) -> None:
    for _ in range(200):
        if len(engine._listeners) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the stream never subscribed")


async def test_stream_sends_this_workspaces_events_and_run_changes(
    client: Client, admin: Headers, make_key: KeyFactory, engine: Engine
) -> None:
    await client.post("/v1/recipes", json={**RECIPE, "conditions": []}, headers=admin)
    reading = asyncio.create_task(
        client.get("/v1/stream?max_events=3&max_seconds=10", headers=admin)
    )
    await subscribed(engine, 1)
    other = make_key("elsewhere", "write")
    await client.post("/v1/events", json={"type": "test.stock", "payload": {}}, headers=other)
    sent = (
        await client.post(
            "/v1/events", json={"type": "test.stock", "payload": product(0)}, headers=admin
        )
    ).json()
    await engine.drain()
    response = await reading
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = parse(response.text)
    assert messages[0] == (
        "event",
        {
            "id": sent["event_id"],
            "type": "test.stock",
            "store": None,
            "workspace": "default",
            "runs": sent["runs"],
        },
    )
    assert [(kind, data["id"], data["status"]) for kind, data in messages[1:]] == [
        ("run", sent["runs"][0], "running"),
        ("run", sent["runs"][0], "succeeded"),
    ]
    assert engine._listeners == []


async def test_stream_sends_heartbeats_and_ends_on_time(
    client: Client, admin: Headers, engine: Engine
) -> None:
    response = await client.get("/v1/stream?heartbeat=0.5&max_seconds=1.2", headers=admin)
    assert response.status_code == 200
    assert 1 <= response.text.count(": heartbeat") <= 2  # every 0.5 s until 1.2 s
    assert parse(response.text) == []
    assert engine._listeners == []
    refused = await client.get("/v1/stream")
    assert refused.status_code == 401


async def test_unknown_and_repeated_query_parameters_are_refused(
    client: Client, admin: Headers
) -> None:
    typo = await client.get("/v1/recipes?enable=false", headers=admin)
    assert typo.status_code == 422
    assert error_of(typo)["details"] == [
        {"path": "query.enable", "message": "unknown query parameter"}
    ]
    twice = await client.get("/v1/events?type=a.b&type=c.d", headers=admin)
    assert twice.status_code == 422
    assert error_of(twice)["details"] == [{"path": "query.type", "message": "given more than once"}]
    known = await client.get("/v1/recipes/x/diff?from=1&to=2", headers=admin)
    assert known.status_code == 404
