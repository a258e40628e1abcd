"""Copy a recipe to another store or workspace, and download one as YAML, through the API."""

from __future__ import annotations

import copy

import httpx
import yaml

from api.keys import create_key
from engine.packs.templatize import template_of
from engine.store.db import Database
from tests.api.conftest import KeyFactory, recipe

Client = httpx.AsyncClient


async def test_a_recipe_is_copied_for_another_store_in_the_same_workspace(
    client: Client, admin: dict[str, str]
) -> None:
    await client.post("/v1/recipes", json=recipe(store="aaa"), headers=admin)
    copied = await client.post(
        "/v1/recipes/sold-out-alert/copy", json={"store": "bbb"}, headers=admin
    )
    assert copied.status_code == 201, copied.text
    body = copied.json()
    assert (body["id"], body["document"]["store"], body["source"]) == (
        "sold-out-alert-copy",
        "bbb",
        "copy:default/sold-out-alert",
    )
    assert copied.headers["location"] == "/v1/recipes/sold-out-alert-copy"
    again = await client.post(
        "/v1/recipes/sold-out-alert/copy", json={"store": "bbb"}, headers=admin
    )
    assert again.status_code == 409
    named = await client.post(
        "/v1/recipes/sold-out-alert/copy",
        json={"id": "for-ccc", "name": "For C", "store": ["ccc"]},
        headers=admin,
    )
    assert (named.json()["name"], named.json()["document"]["store"]) == ("For C", ["ccc"])


async def test_a_copy_of_a_recipe_with_the_longest_id_gets_an_id_that_fits(
    client: Client, admin: dict[str, str]
) -> None:
    longest = "a" * 78 + "-x"
    made = await client.post("/v1/recipes", json=recipe(id=longest), headers=admin)
    assert made.status_code == 201, made.text
    copied = await client.post(f"/v1/recipes/{longest}/copy", json={}, headers=admin)
    assert copied.status_code == 201, copied.text
    assert copied.json()["id"] == "a" * 75 + "-copy"
    again = await client.post(f"/v1/recipes/{longest}/copy", json={}, headers=admin)
    assert again.status_code == 409


async def test_an_agency_copies_between_its_workspaces_and_no_further(
    client: Client, api_db: Database, make_key: KeyFactory
) -> None:
    studio = {
        "Authorization": f"Bearer {create_key(api_db, 'studio', ['admin'], 'a', agency=True)}"
    }
    for name in ("North", "South"):
        await client.post("/v1/workspaces", json={"name": name}, headers=studio)
    north = {**studio, "Sous-Workspace": "north"}
    await client.post("/v1/recipes", json=recipe(store="nnn"), headers=north)
    copied = await client.post(
        "/v1/recipes/sold-out-alert/copy",
        json={"workspace": "south", "store": "sss"},
        headers=north,
    )
    assert copied.status_code == 201, copied.text
    south = await client.get("/v1/recipes", headers={**studio, "Sous-Workspace": "south"})
    [made] = south.json()["data"]
    assert (made["id"], made["source"]) == ("sold-out-alert", "copy:north/sold-out-alert")
    plain = make_key("north", "admin")
    for target in ("south", "elsewhere"):
        refused = await client.post(
            "/v1/recipes/sold-out-alert/copy", json={"workspace": target}, headers=plain
        )
        assert refused.status_code == 404, target
    make_key("elsewhere", "admin")
    beyond = await client.post(
        "/v1/recipes/sold-out-alert/copy", json={"workspace": "elsewhere"}, headers=north
    )
    assert beyond.status_code == 404


async def test_a_recipe_downloads_as_yaml_that_creates_it_again(
    client: Client, admin: dict[str, str], make_key: KeyFactory
) -> None:
    await client.post("/v1/recipes", json=recipe(), headers=admin)
    downloaded = await client.get("/v1/recipes/sold-out-alert/yaml", headers=admin)
    assert downloaded.status_code == 200
    assert downloaded.headers["content-type"].startswith("application/yaml")
    assert 'filename="sold-out-alert.yaml"' in downloaded.headers["content-disposition"]
    document = yaml.safe_load(downloaded.text)
    assert "version" not in document and document["name"] == recipe()["name"]
    other = make_key("other", "admin")
    created = await client.post(
        "/v1/recipes",
        content=downloaded.content,
        headers={**other, "Content-Type": "application/yaml"},
    )
    assert created.status_code == 201, created.text
    assert (await client.get("/v1/recipes/nope/yaml", headers=admin)).status_code == 404


def test_per_client_values_become_typed_inputs() -> None:
    document = copy.deepcopy(recipe(store="abc", version=4))  # RECIPE itself stays as it is
    document["conditions"] = [{"==": [{"var": "customer.email"}, "vip@acme.example"]}]
    document["actions"][0]["with"] |= {
        "to": ["ops@acme.example"],
        "hook": "https://acme.example/notify",
        "note": "write to help@acme.example",
    }
    made, problems = template_of(document, {"count": "/actions/0/with/count", "bad": "/nope"})
    assert [p.path for p in problems] == ["inputs.bad"]
    assert made["inputs"] == {
        "count": {"type": "integer", "default": 1},
        "customer_email": {"type": "email", "default": "vip@acme.example"},
        "note_to": {"type": "emails", "default": ["ops@acme.example"]},
        "note_hook": {"type": "url", "default": "https://acme.example/notify"},
        "note_note": {"type": "email", "default": "help@acme.example"},
    }
    step = made["actions"][0]["with"]
    assert step["note"] == "write to [[ inputs.note_note ]]"
    assert step["count"] == "[[ inputs.count ]]"
    assert "store" not in made and "version" not in made
