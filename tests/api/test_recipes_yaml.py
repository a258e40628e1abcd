"""Recipes sent as YAML (``Content-Type: application/yaml``), as the README shows them: created,
replaced, and refused with errors that name the line and the field."""

from __future__ import annotations

import re

import httpx
import yaml

from tests.conftest import ROOT

Client = httpx.AsyncClient
Headers = dict[str, str]
YAML = {"Content-Type": "application/yaml"}


def readme_recipe() -> str:
    """The README's recipe (its first YAML block)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"## A recipe\n\n```yaml\n(.*?)```", text, re.S)
    assert found, "the README has no recipe under '## A recipe'"
    return found.group(1)


async def test_the_readme_recipe_is_created_from_its_yaml(client: Client, admin: Headers) -> None:
    body = readme_recipe()
    made = await client.post("/v1/recipes", content=body, headers=admin | YAML)
    assert made.status_code == 201, made.text
    assert made.json()["document"]["id"] == yaml.safe_load(body)["id"]
    assert made.json()["trigger_type"] == "bigcommerce.product.out_of_stock"


async def test_a_recipe_is_replaced_with_yaml(client: Client, admin: Headers) -> None:
    body = readme_recipe()
    assert (await client.post("/v1/recipes", content=body, headers=admin | YAML)).status_code == 201
    changed = body.replace("limit: 50", "limit: 20")
    headers = admin | {"Content-Type": "application/x-yaml; charset=utf-8", "If-Match": '"1"'}
    answer = await client.put("/v1/recipes/sold-out-to-backorder", content=changed, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 2
    assert answer.json()["document"]["actions"][0]["with"]["limit"] == 20


async def test_yaml_errors_name_the_line_and_the_field(client: Client, admin: Headers) -> None:
    body = (
        "id: broken\nname: Broken\ntrigger:\n  type: test.stock\n"
        "actions:\n  - id: x\n    use: no.such_action\n"
    )
    answer = await client.post("/v1/recipes", content=body, headers=admin | YAML)
    assert answer.status_code == 422, answer.text
    [detail] = answer.json()["error"]["details"]
    assert detail["path"] == "/actions/0/use"
    assert detail["message"].startswith("line 7, actions[0].use: ")
    missing = "id: broken\nname: Broken\nactions: []\n"
    answer = await client.post("/v1/recipes", content=missing, headers=admin | YAML)
    assert answer.status_code == 422
    messages = [d["message"] for d in answer.json()["error"]["details"]]
    assert "line 1, trigger: required field is missing" in messages, messages


async def test_broken_yaml_is_refused_with_its_line(client: Client, admin: Headers) -> None:
    body = "id: broken\nname: [unclosed\ntrigger: {type: test.stock}\n"
    answer = await client.post("/v1/recipes", content=body, headers=admin | YAML)
    assert answer.status_code == 422, answer.text
    [detail] = answer.json()["error"]["details"]
    assert re.match(r"line \d+: invalid YAML", detail["message"]), detail
    two = "id: a\n---\nid: b\n"
    answer = await client.post("/v1/recipes", content=two, headers=admin | YAML)
    assert answer.status_code == 422
    assert "one YAML document" in answer.json()["error"]["message"]


async def test_the_openapi_document_offers_yaml_bodies(client: Client) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for operation in (paths["/v1/recipes"]["post"], paths["/v1/recipes/{recipe_id}"]["put"]):
        content = operation["requestBody"]["content"]
        assert set(content) >= {"application/json", "application/yaml"}
        assert yaml.safe_load(content["application/yaml"]["example"])["id"]
