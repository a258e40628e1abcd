"""Approvals through the API: list the pending ones, decide once, audited."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from engine import Engine
from engine.model.events import NewEvent
from tests.api.conftest import KeyFactory, error_of, recipe

Client = httpx.AsyncClient

ASK = {
    "id": "ok",
    "use": "core.approval",
    "with": {"title": "Release {{ product.name }}?", "timeout": "2d"},
}
AFTER = {"id": "after", "use": "test.record", "with": {"message": "released"}}


async def waiting_run(client: Client, engine: Engine, headers: dict[str, str], ws: str) -> str:
    made = await client.post(
        "/v1/recipes",
        json=recipe(id="big-order", conditions=[], actions=[ASK, AFTER]),
        headers=headers,
    )
    assert made.status_code == 201, made.text
    result = await engine.ingest(
        NewEvent(type="test.stock", payload={"product": {"id": 7, "name": "Tent"}}, workspace=ws)
    )
    await engine.drain()
    [run_id] = result.runs
    return run_id


async def test_pending_approvals_are_listed_and_decided_once(
    client: Client, engine: Engine, admin: dict[str, str], make_key: KeyFactory
) -> None:
    run_id = await waiting_run(client, engine, admin, "default")
    listed = await client.get("/v1/approvals", headers=admin)
    assert listed.status_code == 200
    [pending] = listed.json()["data"]
    assert pending["run_id"] == run_id
    assert (pending["title"], pending["status"], pending["default"]) == (
        "Release Tent?",
        "pending",
        "reject",
    )
    reader = make_key("default", "read")
    refused = await client.post(
        f"/v1/approvals/{pending['id']}", json={"decision": "approve"}, headers=reader
    )
    assert refused.status_code == 403
    decided = await client.post(
        f"/v1/approvals/{pending['id']}",
        json={"decision": "approve", "comment": "fine"},
        headers=admin,
    )
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert (body["status"], body["decision"], body["comment"]) == ("approved", "approve", "fine")
    assert body["decided_by"].startswith("key:")
    for field in ("created_at", "expires_at"):  # RFC 3339 date-times, with their zone
        assert datetime.fromisoformat(pending[field]).utcoffset() == timedelta(0), field
    for field in ("created_at", "expires_at", "decided_at"):
        assert datetime.fromisoformat(body[field]).utcoffset() == timedelta(0), field
    await engine.drain()
    run = (await client.get(f"/v1/runs/{run_id}", headers=admin)).json()
    assert run["status"] == "succeeded"
    again = await client.post(
        f"/v1/approvals/{pending['id']}", json={"decision": "reject"}, headers=admin
    )
    assert again.status_code == 409
    assert "already decided: approved" in error_of(again)["message"]
    assert (await client.get("/v1/approvals", headers=admin)).json()["data"] == []
    audit = (await client.get("/v1/audit?kind=approval", headers=admin)).json()["data"]
    assert [(a["action"], a["target"]) for a in audit] == [("approved", pending["id"])]


async def test_unknown_approvals_and_bad_decisions(
    client: Client, engine: Engine, admin: dict[str, str]
) -> None:
    run_id = await waiting_run(client, engine, admin, "default")
    missing = await client.post(
        "/v1/approvals/apv_nothing_here", json={"decision": "approve"}, headers=admin
    )
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
    [pending] = (await client.get("/v1/approvals", headers=admin)).json()["data"]
    bad: list[dict[str, Any]] = [{"decision": "maybe"}, {}, {"decision": "approve", "x": 1}]
    for body in bad:
        answer = await client.post(f"/v1/approvals/{pending['id']}", json=body, headers=admin)
        assert answer.status_code == 422, body
        assert error_of(answer)["details"]
    cancelled = await client.post(f"/v1/runs/{run_id}/cancel", headers=admin)
    assert cancelled.status_code == 200
    late = await client.post(
        f"/v1/approvals/{pending['id']}", json={"decision": "approve"}, headers=admin
    )
    assert late.status_code == 409
    assert "cancelled" in error_of(late)["message"]


async def test_lists_page_with_a_cursor(
    client: Client, engine: Engine, admin: dict[str, str]
) -> None:
    await waiting_run(client, engine, admin, "default")
    more = await engine.ingest(
        NewEvent(type="test.stock", payload={"product": {"id": 8, "name": "Mat"}})
    )
    await engine.drain()
    assert len(more.runs) == 1
    first = (await client.get("/v1/approvals?limit=1", headers=admin)).json()
    assert len(first["data"]) == 1 and first["next_cursor"]
    second = (
        await client.get(f"/v1/approvals?limit=1&cursor={first['next_cursor']}", headers=admin)
    ).json()
    assert len(second["data"]) == 1 and second["next_cursor"] is None
    assert first["data"][0]["id"] > second["data"][0]["id"]
