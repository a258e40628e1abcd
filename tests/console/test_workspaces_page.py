"""The workspaces page: an agency key's session lists the agency's clients and opens one (the
console then shows that workspace); it cannot open another agency's; archiving a client ends
the sessions open in it."""

from __future__ import annotations

import httpx

from api.keys import create_key
from engine.store.db import Database
from tests.api.conftest import recipe
from tests.console.conftest import csrf_of, sign_in


async def test_an_agency_session_opens_a_client_workspace(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, api_db: Database
) -> None:
    key = create_key(api_db, "studio", ["admin"], "agency", agency=True)
    studio = {"Authorization": f"Bearer {key}"}
    for name in ("North", "South"):
        await client.post("/v1/workspaces", json={"name": name}, headers=studio)
    await client.post("/v1/recipes", json=recipe(), headers={**studio, "Sous-Workspace": "north"})
    create_key(api_db, "rival", ["admin"], "rival", agency=True)
    assert (await sign_in(browser, key)).status_code == 303
    listed = await browser.get("/console/workspaces")
    assert listed.status_code == 200
    for ident in ("north", "south"):
        assert f'action="/console/workspaces/{ident}/open"' in listed.text
    opened = await browser.post(
        "/console/workspaces/north/open", data={"csrf": csrf_of(listed.text)}
    )
    assert (opened.status_code, opened.headers["location"]) == (303, "/console/")
    recipes = await browser.get("/console/recipes")
    assert "sold-out-alert" in recipes.text
    page = await browser.get("/console/workspaces")
    assert 'title="Workspace">north<' in page.text
    refused = await browser.post(
        "/console/workspaces/rival/open", data={"csrf": csrf_of(page.text)}
    )
    assert refused.status_code == 404
    archived = await client.patch("/v1/workspaces/north", json={"archived": True}, headers=studio)
    assert archived.status_code == 200
    assert (await browser.get("/console/recipes")).status_code == 303  # signed out of it


async def test_a_plain_session_sees_its_own_workspace_only(
    browser: httpx.AsyncClient, new_key
) -> None:
    assert (await sign_in(browser, new_key("solo", "admin"))).status_code == 303
    page = await browser.get("/console/workspaces")
    assert "/open" not in page.text and ">solo<" in page.text
    refused = await browser.post("/console/workspaces/solo/open", data={"csrf": csrf_of(page.text)})
    assert refused.status_code == 404
