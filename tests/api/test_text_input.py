"""Input the database cannot store is refused with a reason (NUL, lone UTF-16 surrogates); a time
past the calendar's ends in UTC is taken as that end."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import error_of, recipe

Client = httpx.AsyncClient
Headers = dict[str, str]


@pytest.mark.parametrize("reason", ["paused \\udbbc here", "a\\u0000b"])
async def test_disable_reason_with_unstorable_text_is_refused(
    client: Client, admin: Headers, reason: str
) -> None:
    created = await client.post("/v1/recipes", json=recipe(), headers=admin)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    body = '{"reason": "' + reason + '"}'
    response = await client.post(
        f"/v1/recipes/{rid}/disable",
        content=body,
        headers={**admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert error_of(response)["code"] == "validation_error"
    still = await client.get(f"/v1/recipes/{rid}", headers=admin)
    assert still.json()["enabled"] is True


async def test_recipe_name_with_nul_is_refused_naming_the_field(
    client: Client, admin: Headers
) -> None:
    body = '{"id": "nul-name", "name": "Sold\\u0000out", ' + (
        '"trigger": {"type": "test.stock"}, "actions": [{"use": "core.log", '
        '"with": {"message": "hi"}}]}'
    )
    response = await client.post(
        "/v1/recipes", content=body, headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    details = error_of(response)["details"]
    assert any("NUL" in d["message"] and "name" in str(d) for d in details), details
    missing = await client.get("/v1/recipes/nul-name", headers=admin)
    assert missing.status_code == 404


async def test_search_query_with_nul_is_refused(client: Client, admin: Headers) -> None:
    response = await client.get("/v1/recipes?q=sold%00out", headers=admin)
    assert response.status_code == 422, response.text
    assert error_of(response)["code"] == "validation_error"


async def test_a_time_past_the_calendars_start_in_utc_means_the_start(
    client: Client, admin: Headers
) -> None:
    created = await client.post("/v1/recipes", json=recipe(), headers=admin)
    rid = created.json()["id"]
    since = "0001-01-01T00:00:00+04:01"  # three hours and a bit before year 1 in UTC
    answer = await client.post(f"/v1/recipes/{rid}/backtest", json={"since": since}, headers=admin)
    assert answer.status_code == 200, answer.text
