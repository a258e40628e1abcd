"""Tenant isolation: a key of workspace A gets 404 for every resource of workspace B, by every
method, and nothing of B changes; lists never show B's items."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from api.keys import create_key
from engine import Engine, Workspace
from engine.model.events import NewEvent
from engine.store.db import Database
from tests.api.conftest import GOOD_TOKEN, KeyFactory, recipe

Client = httpx.AsyncClient


def now() -> datetime:
    return datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
async def other(client: Client, make_key: KeyFactory, engine: Engine) -> dict[str, Any]:
    """Workspace B, with one of everything."""
    headers = make_key("bee", "admin")
    made = await client.post(
        "/v1/recipes", json=recipe(id="b-only", conditions=[]), headers=headers
    )
    store = await client.post(
        "/v1/stores", json={"store_hash": "bbb", "access_token": GOOD_TOKEN}, headers=headers
    )
    await client.put("/v1/secrets/B_SECRET", json={"value": "b"}, headers=headers)
    key = await client.post("/v1/keys", json={"name": "b", "scopes": ["read"]}, headers=headers)
    hook = await client.post("/v1/hooks", json={"name": "b-hook"}, headers=headers)
    result = await engine.ingest(
        NewEvent(type="test.stock", payload={"product": {"id": 1}}, workspace="bee")
    )
    ask = {"id": "ok", "use": "core.approval", "with": {"title": "Go?", "timeout": "1d"}}
    asking = await client.post(
        "/v1/recipes",
        json=recipe(id="b-ask", trigger={"type": "custom.ask"}, conditions=[], actions=[ask]),
        headers=headers,
    )
    asked = await engine.ingest(NewEvent(type="custom.ask", payload={}, workspace="bee"))
    await engine.drain()
    assert asking.status_code == 201
    pending = await client.get("/v1/approvals", headers=headers)
    [approval] = pending.json()["data"]
    assert approval["run_id"] == asked.runs[0]
    assert made.status_code == 201
    assert store.status_code == 201
    assert key.status_code == 201
    assert hook.status_code == 201
    assert len(result.runs) == 1
    return {
        "headers": headers,
        "uid": made.json()["uid"],
        "store": store.json()["id"],
        "key": key.json()["id"],
        "hook": hook.json()["id"],
        "event": result.event_id,
        "run": result.runs[0],
        "approval": approval["id"],
    }


LISTS = (
    "/v1/recipes",
    "/v1/events",
    "/v1/runs",
    "/v1/stores",
    "/v1/secrets",
    "/v1/hooks",
    "/v1/approvals",
)


def matrix(b: dict[str, Any]) -> list[tuple[str, str, Any]]:
    recipe_path = "/v1/recipes/b-only"
    run = f"/v1/runs/{b['run']}"
    return [
        ("GET", recipe_path, None),
        ("PUT", recipe_path, recipe(id="b-only", name="taken over", version=1)),
        ("POST", f"{recipe_path}/enable", None),
        ("POST", f"{recipe_path}/disable", None),
        ("POST", f"{recipe_path}/rollback", {"version": 1}),
        ("POST", f"{recipe_path}/test", None),
        ("GET", f"{recipe_path}/versions", None),
        ("GET", f"{recipe_path}/versions/1", None),
        ("GET", f"{recipe_path}/diff?from=1&to=1", None),
        ("GET", f"{recipe_path}/yaml", None),
        ("POST", f"{recipe_path}/copy", {"store": "aaa"}),
        ("DELETE", recipe_path, None),
        ("POST", "/v1/recipes/test", {"recipe": recipe(id="mine"), "event_id": b["event"]}),
        ("GET", f"/v1/events/{b['event']}", None),
        ("GET", run, None),
        ("POST", f"{run}/replay", {}),
        ("POST", f"{run}/release", None),
        ("POST", f"{run}/discard", None),
        ("POST", f"{run}/cancel", None),
        ("POST", f"/v1/approvals/{b['approval']}", {"decision": "approve"}),
        ("GET", f"/v1/stores/{b['store']}", None),
        ("GET", "/v1/stores/bbb", None),
        ("DELETE", f"/v1/stores/{b['store']}", None),
        ("DELETE", "/v1/stores/bbb", None),
        ("DELETE", "/v1/secrets/B_SECRET", None),
        ("DELETE", f"/v1/keys/{b['key']}", None),
        ("DELETE", f"/v1/hooks/{b['hook']}", None),
        ("GET", "/v1/workspaces/bee", None),
        ("PATCH", "/v1/workspaces/bee", {"name": "taken over"}),
        ("PATCH", "/v1/workspaces/bee", {"archived": True}),
    ]


async def snapshot(client: Client, b: dict[str, Any]) -> dict[str, Any]:
    headers = b["headers"]
    paths = [
        "/v1/recipes/b-only",
        "/v1/recipes/b-only/versions",
        f"/v1/runs/{b['run']}",
        "/v1/runs",
        f"/v1/events/{b['event']}",
        "/v1/events",
        "/v1/stores",
        "/v1/secrets",
        "/v1/keys",
        "/v1/hooks",
        "/v1/workspace",
        "/v1/workspaces",
        "/v1/audit",
        "/v1/usage",
        "/v1/approvals",
    ]
    return {path: (await client.get(path, headers=headers)).json() for path in paths}


@pytest.fixture
def agency(client: Client, api_db: Database) -> dict[str, str]:
    """An agency key of workspace ``ay-agency``, which has the client workspace ``ay-client``."""
    key = create_key(api_db, "ay-agency", ["admin"], "agency", agency=True)
    with api_db.session() as session:
        session.add(
            Workspace(id="ay-client", name="A's client", created_at=now(), agency_id="ay-agency")
        )
        session.commit()
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("acting_in", [None, "ay-client", "bee"])
async def test_an_agency_key_never_reaches_a_workspace_that_is_not_its_client(
    client: Client, agency: dict[str, str], other: dict[str, Any], acting_in: str | None
) -> None:
    """Acting in its own workspace, in its client's, or naming B: B's resources answer 404."""
    headers = agency if acting_in is None else {**agency, "Sous-Workspace": acting_in}
    before = await snapshot(client, other)
    for method, path, body in matrix(other):
        response = await client.request(method, path, json=body, headers=headers)
        if body is not None and "event_id" in body and acting_in != "bee":
            assert response.status_code == 422, (method, path, response.text)
            continue
        assert response.status_code == 404, (acting_in, method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    for path in LISTS:
        listed = await client.get(path, headers=headers)
        if acting_in == "bee":
            assert (listed.status_code, listed.json()["error"]["code"]) == (404, "not_found")
            continue
        assert listed.status_code == 200, path
        assert "bee" not in listed.text and "b-only" not in listed.text, path
    assert await snapshot(client, other) == before


async def test_another_workspace_answers_404_and_nothing_changes(
    client: Client, make_key: KeyFactory, other: dict[str, Any]
) -> None:
    a = make_key("ay", "admin")
    before = await snapshot(client, other)
    for method, path, body in matrix(other):
        response = await client.request(method, path, json=body, headers=a)
        if body is not None and "event_id" in body:
            # an id in a body answers 422 naming the field, the same as an id that exists nowhere
            assert response.status_code == 422, (method, path, response.text)
            assert response.json()["error"]["details"][0]["path"] == "/event_id"
            continue
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    assert await snapshot(client, other) == before


async def test_lists_show_only_the_callers_workspace(
    client: Client, make_key: KeyFactory, other: dict[str, Any]
) -> None:
    a = make_key("ay", "admin")
    for path in LISTS:
        assert (await client.get(path, headers=a)).json()["data"] == [], path
    keys = (await client.get("/v1/keys", headers=a)).json()["data"]
    assert [k["name"] for k in keys] == ["test"]
    workspace = (await client.get("/v1/workspace", headers=a)).json()
    assert workspace["recipes"] == 0
    assert workspace["stores"] == 0
    filtered = await client.get(f"/v1/runs?event_id={other['event']}", headers=a)
    assert filtered.json()["data"] == []
    audit = (await client.get("/v1/audit", headers=a)).json()["data"]
    assert [(e["kind"], e["action"]) for e in audit] == [("key", "created")]  # A's own key
    assert "b-only" not in str(audit) and "B_SECRET" not in str(audit)
    usage = (await client.get("/v1/usage", headers=a)).json()
    assert (usage["totals"]["runs"], usage["data"]) == (0, [])
    b_usage = (await client.get("/v1/usage", headers=other["headers"])).json()
    assert b_usage["totals"]["runs"] == 2  # B's runs (its recipe and its approval), for B only
    b_audit = (await client.get("/v1/audit", headers=other["headers"])).json()["data"]
    assert {e["target"] for e in b_audit} >= {"b-only", "B_SECRET", "bbb"}


async def test_events_sent_by_a_never_reach_bs_recipes(
    client: Client, make_key: KeyFactory, other: dict[str, Any]
) -> None:
    a = make_key("ay", "write")
    sent = await client.post("/v1/events", json={"type": "test.stock", "payload": {}}, headers=a)
    assert sent.status_code == 202
    assert sent.json()["runs"] == []
