"""The OpenAPI document says what the server does, and the server does what it says: readable
operationIds, descriptions and examples everywhere, links for the stateful walk, ``Location``
on 201, ``Allow`` on OPTIONS and 405, 412 for a stale ``If-Match``, bounded version numbers."""

from __future__ import annotations

import re
from typing import Any

import httpx

from api.openapi import _require_raw_bodies
from tests.api.conftest import RECIPE, error_of

Client = httpx.AsyncClient
Headers = dict[str, str]
METHODS = {"get", "put", "post", "delete", "patch"}


async def document(client: Client) -> dict[str, Any]:
    answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


async def test_every_operation_has_a_readable_id_a_description_and_an_example(
    client: Client,
) -> None:
    ops = operations(await document(client))
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+\.[a-z_]+", i) for i in ids), ids
    assert {"recipes.create", "recipes.show", "recipes.list", "runs.show"} <= set(ids)
    for path, method, op in ops:
        assert op.get("description"), f"{method} {path}"
        assert "'example'" in str(op), f"{method} {path} has no example"


async def test_error_answers_use_the_error_body_and_201s_document_location(
    client: Client,
) -> None:
    doc = await document(client)
    for path, method, op in operations(doc):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)
        if op.get("security"):
            assert "401" in op["responses"], f"{method} {path}"
        if "201" in op["responses"]:
            assert "Location" in op["responses"]["201"].get("headers", {}), f"{method} {path}"
    update = doc["paths"]["/v1/recipes/{recipe_id}"]["put"]["responses"]
    assert {"404", "409", "412", "422", "428"} <= set(update)


async def test_create_and_list_link_to_the_operations_on_what_they_return(
    client: Client,
) -> None:
    doc = await document(client)
    created = doc["paths"]["/v1/recipes"]["post"]["responses"]["201"]["links"]
    assert created["recipes.show"]["parameters"] == {"recipe_id": "$response.body#/id"}
    listed = doc["paths"]["/v1/recipes"]["get"]["responses"]["200"]["links"]
    assert listed["recipes.show"]["parameters"] == {"recipe_id": "$response.body#/data/0/id"}
    versions = doc["paths"]["/v1/recipes/{recipe_id}/versions"]["get"]["responses"]["200"]
    assert versions["links"]["recipes.show_version"]["parameters"] == {
        "recipe_id": "$request.path.recipe_id",
        "version": "$response.body#/data/0/version",
    }
    stores = doc["paths"]["/v1/stores"]["post"]["responses"]["201"]["links"]
    assert stores["stores.show"]["parameters"] == {"store": "$response.body#/store_hash"}


async def test_every_path_parameter_has_a_link_that_fills_it(client: Client) -> None:
    """The document's links are the whole map of where ids come from (the fuzzer's stateful
    walk is measured against them alone): each operation on a path with parameters is the
    target of a link that fills every one of them."""
    doc = await document(client)
    operations = {
        op["operationId"]: path
        for path, item in doc["paths"].items()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    filled: dict[str, set[str]] = {}
    for item in doc["paths"].values():
        for op in item.values():
            for answer in op.get("responses", {}).values() if isinstance(op, dict) else ():
                for link in answer.get("links", {}).values():
                    target = link["operationId"]
                    assert target in operations, target
                    params = set(link["parameters"])
                    assert params == set(re.findall(r"{(\w+)}", operations[target])), link
                    filled.setdefault(target, set()).update(params)
    unlinked = sorted(
        op_id for op_id, path in operations.items() if "{" in path and op_id not in filled
    )
    assert unlinked == []


async def test_a_created_recipe_answers_with_its_location(client: Client, admin: Headers) -> None:
    made = await client.post("/v1/recipes", json=RECIPE, headers=admin)
    assert made.status_code == 201, made.text
    assert made.headers["Location"] == "/v1/recipes/sold-out-alert"
    shown = await client.get(made.headers["Location"], headers=admin)
    assert shown.status_code == 200
    assert shown.json()["id"] == "sold-out-alert"


async def test_options_and_405_list_every_method_of_the_path(
    client: Client, admin: Headers
) -> None:
    options = await client.options("/v1/recipes", headers=admin)
    assert options.status_code == 204
    assert options.headers["Allow"] == "GET, POST, OPTIONS"
    literal = await client.options("/v1/recipes/test", headers=admin)
    assert literal.headers["Allow"] == "POST, OPTIONS"
    templated = await client.options("/v1/recipes/sold-out-alert", headers=admin)
    assert templated.headers["Allow"] == "GET, PUT, DELETE, OPTIONS"
    refused = await client.delete("/v1/recipes", headers=admin)
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "GET, POST, OPTIONS"
    assert "use GET, POST" in error_of(refused)["message"]


async def test_a_stale_if_match_is_412_and_a_stale_body_version_409(
    client: Client, admin: Headers
) -> None:
    assert (await client.post("/v1/recipes", json=RECIPE, headers=admin)).status_code == 201
    changed = {**RECIPE, "name": "Renamed"}
    url = "/v1/recipes/sold-out-alert"
    current = await client.put(url, json=changed, headers={**admin, "If-Match": '"1"'})
    assert current.status_code == 200
    stale = await client.put(url, json=changed, headers={**admin, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert error_of(stale)["code"] == "precondition_failed"
    by_body = await client.put(url, json={**changed, "version": 1}, headers=admin)
    assert by_body.status_code == 409


async def test_version_numbers_past_the_documented_maximum_are_422_naming_the_field(
    client: Client, admin: Headers
) -> None:
    doc = await document(client)
    bound = doc["components"]["schemas"]["RecipeRollback"]["properties"]["version"]["maximum"]
    assert bound == 2**31 - 1  # the INTEGER column on PostgreSQL
    assert (await client.post("/v1/recipes", json=RECIPE, headers=admin)).status_code == 201
    huge = bound + 1
    diff = await client.get(f"/v1/recipes/sold-out-alert/diff?from=1&to={huge}", headers=admin)
    assert diff.status_code == 422
    assert error_of(diff)["details"][0]["path"] == "query.to"
    version = await client.get(f"/v1/recipes/sold-out-alert/versions/{huge}", headers=admin)
    assert version.status_code == 422
    assert error_of(version)["details"][0]["path"] == "path.version"
    rollback = await client.post(
        "/v1/recipes/sold-out-alert/rollback", json={"version": huge}, headers=admin
    )
    assert rollback.status_code == 422
    assert error_of(rollback)["details"][0]["path"] == "/version"


async def test_a_rollback_to_a_version_the_recipe_never_had_is_422_naming_the_field(
    client: Client, admin: Headers
) -> None:
    assert (await client.post("/v1/recipes", json=RECIPE, headers=admin)).status_code == 201
    url = "/v1/recipes/sold-out-alert/rollback"
    missing = await client.post(url, json={"version": 3}, headers=admin)
    assert missing.status_code == 422
    assert error_of(missing)["details"][0]["path"] == "/version"
    gone = await client.post(
        "/v1/recipes/no-such-recipe/rollback", json={"version": 1}, headers=admin
    )
    assert gone.status_code == 404


def test_a_body_of_raw_bytes_is_required() -> None:
    binary = {"schema": {"type": "string", "format": "binary"}}
    upload: dict[str, Any] = {"requestBody": {"content": {"application/gzip": binary}}}
    json_body: dict[str, Any] = {"requestBody": {"content": {"application/json": {"schema": {}}}}}
    _require_raw_bodies(upload)
    _require_raw_bodies(json_body)
    assert upload["requestBody"]["required"] is True
    assert "required" not in json_body["requestBody"]
