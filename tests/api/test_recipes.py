"""Recipes through the API: create, validate, read, list, update, enable, versions, dry-run."""

from __future__ import annotations

from typing import Any

import httpx

from engine import Engine
from engine.model.events import NewEvent
from tests.api.conftest import RECIPE, error_of, product, recipe

Client = httpx.AsyncClient
Headers = dict[str, str]


async def create(client: Client, headers: Headers, **changes: Any) -> dict[str, Any]:
    response = await client.post("/v1/recipes", json=recipe(**changes), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_created_recipe_is_dispatched_and_readable(
    client: Client, admin: Headers, engine: Engine
) -> None:
    made = await create(client, admin)
    assert made["id"] == "sold-out-alert"
    assert made["version"] == 1
    assert made["enabled"] is True
    assert made["uid"].startswith("rcp_")
    assert made["trigger_type"] == "test.stock"
    assert made["created_at"].endswith("Z")
    assert made["uid"] in engine.index.by_uid
    shown = await client.get("/v1/recipes/sold-out-alert", headers=admin)
    assert shown.status_code == 200
    assert shown.headers["ETag"] == '"1"'
    assert (
        shown.json()["document"]["actions"][0]["with"]["message"] == "{{ product.name }} sold out"
    )


async def test_duplicate_id_is_a_conflict(client: Client, admin: Headers) -> None:
    await create(client, admin)
    again = await client.post("/v1/recipes", json=RECIPE, headers=admin)
    assert again.status_code == 409
    assert error_of(again)["code"] == "conflict"


async def test_invalid_recipe_is_refused_with_json_pointers(client: Client, admin: Headers) -> None:
    bad = recipe(actions=[{"use": "test.record", "with": {"count": -1}}, {"use": "no.such.action"}])
    response = await client.post("/v1/recipes", json=bad, headers=admin)
    assert response.status_code == 422
    error = error_of(response)
    paths = {d["path"] for d in error["details"]}
    assert paths == {"/actions/0/with/count", "/actions/1/use"}, error
    shape = await client.post(
        "/v1/recipes", json={"id": "x", "trigger": {"type": "test.stock"}}, headers=admin
    )
    assert shape.status_code == 422
    assert {d["path"] for d in error_of(shape)["details"]} == {"/name", "/actions"}


async def test_validate_reports_every_problem_without_saving(
    client: Client, admin: Headers
) -> None:
    bad = recipe(
        conditions=[{"nope": [1]}], actions=[{"use": "test.record", "with": {"unknown": 1}}]
    )
    response = await client.post("/v1/recipes/validate", json=bad, headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    assert {e["path"] for e in body["errors"]} == {"/conditions/0", "/actions/0/with/unknown"}
    ok = await client.post("/v1/recipes/validate", json=RECIPE, headers=admin)
    assert ok.json() == {"valid": True, "errors": []}
    listed = await client.get("/v1/recipes", headers=admin)
    assert listed.json()["data"] == []


async def test_list_filters_and_pages(client: Client, admin: Headers) -> None:
    for n in range(5):
        await create(client, admin, id=f"r{n}", name=f"Recipe {n}", enabled=n % 2 == 0)
    await create(client, admin, id="custom-one", name="Custom", trigger={"type": "custom.sync"})
    first = (await client.get("/v1/recipes?limit=2", headers=admin)).json()
    assert [r["id"] for r in first["data"]] == ["custom-one", "r0"]
    second = (
        await client.get(f"/v1/recipes?limit=2&cursor={first['next_cursor']}", headers=admin)
    ).json()
    assert [r["id"] for r in second["data"]] == ["r1", "r2"]
    last = (await client.get("/v1/recipes?limit=10&cursor=r2", headers=admin)).json()
    assert [r["id"] for r in last["data"]] == ["r3", "r4"]
    assert last["next_cursor"] is None
    enabled = (await client.get("/v1/recipes?enabled=false", headers=admin)).json()
    assert [r["id"] for r in enabled["data"]] == ["r1", "r3"]
    custom = (await client.get("/v1/recipes?trigger=custom.*", headers=admin)).json()
    assert [r["id"] for r in custom["data"]] == ["custom-one"]
    exact = (await client.get("/v1/recipes?trigger=test.stock&q=recipe 3", headers=admin)).json()
    assert [r["id"] for r in exact["data"]] == ["r3"]


async def test_update_needs_the_current_version(
    client: Client, admin: Headers, engine: Engine
) -> None:
    made = await create(client, admin)
    changed = recipe(name="Renamed")
    missing = await client.put("/v1/recipes/sold-out-alert", json=changed, headers=admin)
    assert missing.status_code == 428
    ok = await client.put(
        "/v1/recipes/sold-out-alert", json=changed, headers={**admin, "If-Match": '"1"'}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["version"] == 2
    assert ok.headers["ETag"] == '"2"'
    assert engine.index.by_uid[made["uid"]].version == 2
    stale = await client.put(
        "/v1/recipes/sold-out-alert", json={**changed, "version": 1}, headers=admin
    )
    assert stale.status_code == 409
    by_field = await client.put(
        "/v1/recipes/sold-out-alert", json={**changed, "version": 2}, headers=admin
    )
    assert by_field.status_code == 200
    assert by_field.json()["version"] == 3
    renamed = await client.put(
        "/v1/recipes/sold-out-alert",
        json={**changed, "id": "other"},
        headers={**admin, "If-Match": "*"},
    )
    assert renamed.status_code == 422
    assert error_of(renamed)["details"][0]["path"] == "/id"


async def test_disable_enable_and_delete_update_the_dispatcher(
    client: Client, admin: Headers, engine: Engine
) -> None:
    made = await create(client, admin)
    off = await client.post(
        "/v1/recipes/sold-out-alert/disable", json={"reason": "stock count"}, headers=admin
    )
    assert off.status_code == 200
    assert off.json()["enabled"] is False
    assert off.json()["disabled_reason"] == "stock count"
    assert made["uid"] not in engine.index.by_uid
    on = await client.post("/v1/recipes/sold-out-alert/enable", headers=admin)
    assert on.json()["enabled"] is True
    assert made["uid"] in engine.index.by_uid
    gone = await client.delete("/v1/recipes/sold-out-alert", headers=admin)
    assert gone.status_code == 204
    assert made["uid"] not in engine.index.by_uid
    assert (await client.get("/v1/recipes/sold-out-alert", headers=admin)).status_code == 404


async def test_versions_diff_and_rollback(client: Client, admin: Headers) -> None:
    await create(client, admin)
    await client.put(
        "/v1/recipes/sold-out-alert",
        json=recipe(name="Second name"),
        headers={**admin, "If-Match": '"1"'},
    )
    versions = (await client.get("/v1/recipes/sold-out-alert/versions", headers=admin)).json()
    assert [v["version"] for v in versions["data"]] == [1, 2]
    one = (await client.get("/v1/recipes/sold-out-alert/versions/1", headers=admin)).json()
    assert one["document"]["name"] == RECIPE["name"]
    missing = await client.get("/v1/recipes/sold-out-alert/versions/9", headers=admin)
    assert missing.status_code == 404
    diff = (await client.get("/v1/recipes/sold-out-alert/diff?from=1&to=2", headers=admin)).json()
    assert diff["from"] == 1
    assert diff["to"] == 2
    assert '+  "name": "Second name"' in diff["diff"]
    back = await client.post(
        "/v1/recipes/sold-out-alert/rollback", json={"version": 1}, headers=admin
    )
    assert back.status_code == 200
    assert back.json()["version"] == 3
    assert back.json()["name"] == RECIPE["name"]


async def test_dry_run_says_which_condition_failed_and_renders_steps(
    client: Client, admin: Headers
) -> None:
    await create(client, admin)
    no = await client.post(
        "/v1/recipes/sold-out-alert/test", json={"event": {"payload": product(5)}}, headers=admin
    )
    assert no.status_code == 200, no.text
    body = no.json()
    assert body["matched"] is False
    assert body["stage"] == "conditions"
    assert body["reason"]["condition"] == 0
    assert "5" in str(body["reason"])
    yes = (
        await client.post(
            "/v1/recipes/sold-out-alert/test",
            json={"event": {"payload": product(0)}},
            headers=admin,
        )
    ).json()
    assert yes["matched"] is True
    assert yes["steps"][0]["params"] == {"message": "Cat Eye Sunglasses sold out", "count": 1}
    assert yes["steps"][1]["params"]["message"].startswith("after <steps")
    other = (
        await client.post(
            "/v1/recipes/sold-out-alert/test",
            json={"event": {"type": "custom.x", "payload": product(0)}},
            headers=admin,
        )
    ).json()
    assert other["matched"] is False
    assert other["stage"] == "trigger"


async def test_dry_run_on_a_past_event_and_on_an_unsaved_document(
    client: Client, admin: Headers, engine: Engine
) -> None:
    await create(client, admin, enabled=False)
    past = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    on_past = await client.post(
        "/v1/recipes/sold-out-alert/test", json={"event_id": past.event_id}, headers=admin
    )
    assert on_past.json()["matched"] is True
    unknown = await client.post(
        "/v1/recipes/sold-out-alert/test", json={"event_id": "evt_nope"}, headers=admin
    )
    assert unknown.status_code == 422  # the recipe exists; the body names no event
    assert error_of(unknown)["details"][0]["path"] == "/event_id"
    both = await client.post(
        "/v1/recipes/sold-out-alert/test",
        json={"event_id": past.event_id, "event": {}},
        headers=admin,
    )
    assert both.status_code == 422
    sample = await client.post("/v1/recipes/sold-out-alert/test", headers=admin)
    assert sample.status_code == 200, sample.text
    assert (
        "no attribute 'name'" in sample.json()["steps"][0]["error"]
    )  # the sample is {"product": {"id": 1}}
    unsaved = await client.post(
        "/v1/recipes/test",
        json={"recipe": recipe(conditions=[]), "event": {"payload": product(3)}},
        headers=admin,
    )
    assert unsaved.json()["matched"] is True
    invalid = await client.post(
        "/v1/recipes/test", json={"recipe": recipe(actions=[{"use": "nope"}])}, headers=admin
    )
    assert invalid.status_code == 422
    assert error_of(invalid)["details"][0]["path"] == "/recipe/actions/0/use"
