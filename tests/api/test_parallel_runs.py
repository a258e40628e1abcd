"""A ``parallel`` recipe through the API: saved with ``POST /v1/recipes``, fired by
``POST /v1/events``, its trace read back with ``GET /v1/runs/{id}`` (a row per branch step, the
step's output joined by branch), the catalog's entry, and the 422s naming the field."""

from __future__ import annotations

from typing import Any

import httpx

from engine import Engine
from tests.api.conftest import error_of, product, recipe
from tests.fakes import Recorder

Client = httpx.AsyncClient
Headers = dict[str, str]


def say(message: str) -> dict[str, Any]:
    return {"id": "say", "use": "test.record", "with": {"message": message}}


FAN: dict[str, Any] = {
    "id": "notify",
    "parallel": {
        "staff": [say("staff: {{ product.name }}")],
        "note": [
            say("note"),
            {"id": "more", "use": "test.record", "with": {"message": "{{ steps.say.echoed }}+"}},
        ],
    },
}
AFTER = {
    "id": "after",
    "use": "test.record",
    "with": {"message": "{{ steps.notify.note.more.echoed }}"},
}


async def test_a_parallel_run_shows_each_branch_step_in_its_trace(
    client: Client, admin: Headers, engine: Engine, recorder: Recorder
) -> None:
    saved = await client.post("/v1/recipes", json=recipe(actions=[FAN, AFTER]), headers=admin)
    assert saved.status_code == 201, saved.text
    assert saved.json()["document"]["actions"][0]["use"] == "core.parallel"
    sent = await client.post(
        "/v1/events", json={"type": "test.stock", "payload": product(0)}, headers=admin
    )
    assert sent.status_code == 202, sent.text
    await engine.drain()
    [listed] = (await client.get("/v1/runs", headers=admin)).json()["data"]
    shown = (await client.get(f"/v1/runs/{listed['id']}", headers=admin)).json()
    assert shown["status"] == "succeeded"
    trace = {s["id"]: s for s in shown["steps"]}
    assert list(trace) == [
        "notify",
        "after",
        "notify.staff.say",
        "notify.note.say",
        "notify.note.more",
    ]
    assert trace["notify.staff.say"]["input"]["message"] == "staff: Cat Eye Sunglasses"
    joined = trace["notify"]["output"]
    assert joined["note"]["more"]["echoed"] == "note+"
    assert joined["staff"]["say"]["echoed"] == "staff: Cat Eye Sunglasses"
    assert trace["after"]["output"]["echoed"] == "note+"
    assert sorted(c[1]["message"] for c in recorder.calls) == [
        "note",
        "note+",
        "note+",
        "staff: Cat Eye Sunglasses",
    ]


async def test_the_catalog_describes_core_parallel(client: Client, admin: Headers) -> None:
    catalog = (await client.get("/v1/catalog", headers=admin)).json()
    [entry] = [a for a in catalog["actions"] if a["name"] == "core.parallel"]
    assert set(entry["params_schema"]["properties"]) == {"parallel", "fail_fast"}
    assert entry["output_schema"]["examples"][0]["email_staff"]["mail"] == {"sent": True}
    schema = (await client.get("/v1/schema/recipe", headers=admin)).json()
    [variant] = [v for v in schema["$defs"]["Step"]["oneOf"] if v["title"] == "core.parallel"]
    assert variant["properties"]["parallel"]["minProperties"] == 2


async def test_a_parallel_refused_at_save_names_the_field(client: Client, admin: Headers) -> None:
    wait = {"id": "pause", "use": "core.wait", "with": {"for": "1h"}}
    branches = {**FAN["parallel"], "later": [wait]}
    refused = await client.post(
        "/v1/recipes", json=recipe(actions=[{**FAN, "parallel": branches}]), headers=admin
    )
    assert refused.status_code == 422, refused.text
    [detail] = error_of(refused)["details"]
    assert detail["path"] == "/actions/0/parallel/later/0/use"
    assert "cannot wait" in detail["message"]
    lone = {**FAN, "parallel": {"staff": FAN["parallel"]["staff"]}}
    refused = await client.post("/v1/recipes", json=recipe(actions=[lone]), headers=admin)
    assert refused.status_code == 422, refused.text
    assert "2 to 10 branches" in error_of(refused)["details"][0]["message"]


async def test_a_dry_run_lists_each_branchs_steps(client: Client, admin: Headers) -> None:
    saved = await client.post("/v1/recipes", json=recipe(actions=[FAN, AFTER]), headers=admin)
    assert saved.status_code == 201, saved.text
    tried = await client.post(
        f"/v1/recipes/{saved.json()['id']}/test",
        json={"event": {"payload": product(0)}},
        headers=admin,
    )
    assert tried.status_code == 200, tried.text
    first = tried.json()["steps"][0]
    assert (first["id"], first["use"]) == ("notify", "core.parallel")
    assert first["params"] == {"staff": ["say"], "note": ["say", "more"]}
    assert first["error"] is None
