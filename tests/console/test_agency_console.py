"""An agency's journey through the console: it creates two client workspaces (errors shown next
to the field), renames one, sets limits, copies and downloads a recipe, exports it as a template
pack with a chosen input, shares the pack with both clients, previews (changing nothing) and
applies an upgrade for every client, and reads each client's usage and audit pages. Another
agency's session reaches none of it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import yaml

from api.app import create_app
from api.keys import create_key
from api.routes.packs import routers
from engine import Engine
from engine.packs.archive import PackFiles, build_archive, read_archive
from engine.store.db import Database
from sous.container import Container
from tests.api.conftest import recipe
from tests.console.conftest import csrf_of, sign_in

CLIENTS = {"north": ("nnn", 2), "south": ("sss", 7)}


@pytest.fixture
def app(container: Container) -> Any:
    """The API and console with the packs and templates routes, as ``sous serve`` mounts them."""
    container.routers.extend(routers())
    return create_app(container)


async def post(browser: httpx.AsyncClient, path: str, **data: object) -> httpx.Response:
    page = await browser.get("/console/workspaces")
    return await browser.post(path, data={"csrf": csrf_of(page.text), **data})


async def upload(browser: httpx.AsyncClient, data: bytes, name: str) -> None:
    page = await browser.get("/console/packs")
    sent = await browser.post(
        "/console/packs/upload",
        data={"csrf": csrf_of(page.text)},
        files={"archive": (f"{name}.tar.gz", data, "application/gzip")},
    )
    assert sent.status_code == 303, sent.text


async def onboard(browser: httpx.AsyncClient) -> None:
    refused = await post(browser, "/console/workspaces", name="", limit_runs="-1")
    assert refused.status_code == 422
    assert re.search(r'id="err-new-name">', refused.text)
    assert re.search(r'id="err-new-limit_runs">[^<]*greater than or equal to 0', refused.text)
    for name in ("North", "South"):
        made = await post(browser, "/console/workspaces", name=name, limit_emails="500")
        assert (made.status_code, made.headers["location"]) == (
            303,
            "/console/workspaces?done=created",
        )
    taken = await post(browser, "/console/workspaces", name="North")
    assert taken.status_code == 422 and 'id="err-new-id"' in taken.text
    renamed = await post(browser, "/console/workspaces/north", name="North Outfitters")
    assert renamed.status_code == 303
    limited = await post(browser, "/console/workspaces/south", limits="set", limit_runs="100")
    assert limited.status_code == 303
    page = (await browser.get("/console/workspaces")).text
    assert "North Outfitters" in page and "runs 100" in page and "emails 500" in page


async def test_an_agency_onboards_shares_upgrades_and_reads_each_client_in_the_console(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, api_db: Database, engine: Engine
) -> None:
    key = create_key(api_db, "studio", ["admin"], "agency", agency=True)
    studio = {"Authorization": f"Bearer {key}"}
    assert (await sign_in(browser, key)).status_code == 303
    await onboard(browser)
    # A recipe of the agency's, copied to a client's store and downloaded as YAML.
    new = await browser.get("/console/recipes/_new")
    created = await browser.post(
        "/console/recipes", data={"csrf": csrf_of(new.text), "document": yaml.safe_dump(recipe())}
    )
    assert created.status_code == 303, created.text
    form = await browser.get("/console/recipes/sold-out-alert/copy")
    assert '<option value="north"' in form.text and '<option value="south"' in form.text
    bad = await browser.post(
        "/console/recipes/sold-out-alert/copy",
        data={"csrf": csrf_of(form.text), "workspace": "north", "id": "Not An Id"},
    )
    assert bad.status_code == 422 and 'id="err-id"' in bad.text
    copied = await browser.post(
        "/console/recipes/sold-out-alert/copy",
        data={"csrf": csrf_of(form.text), "workspace": "north", "store": "nnn", "id": "kept"},
    )
    assert copied.status_code == 303, copied.text
    there = {**studio, "Sous-Workspace": "north"}
    kept = (await client.get("/v1/recipes/kept", headers=there)).json()
    assert (kept["source"], kept["document"]["store"]) == ("copy:studio/sold-out-alert", "nnn")
    assert (await client.delete("/v1/recipes/kept", headers=there)).status_code == 204
    file = await browser.get("/console/recipes/sold-out-alert/yaml")
    assert file.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(file.text)["id"] == "sold-out-alert"
    # Exported as a template pack, the threshold an input; installed, shared with each client.
    packs = await browser.get("/console/packs")
    exported = await browser.post(
        "/console/packs/export",
        data={
            "csrf": csrf_of(packs.text),
            "name": "acme-basics",
            "version": "1.0.0",
            "recipe": "sold-out-alert",
            "templates": "true",
            "inputs": "sold-out-alert threshold=/conditions/0/<=/1",
        },
    )
    assert exported.headers["content-type"] == "application/gzip", exported.text
    files = read_archive(exported.content)
    template = files.text("templates/sold-out-alert.yaml")
    assert "[[ inputs.threshold ]]" in template
    await upload(browser, exported.content, "acme-basics-1.0.0")
    for workspace, (store, threshold) in CLIENTS.items():
        shared = await post(browser, "/console/packs/acme-basics/1.0.0/share", workspace=workspace)
        assert shared.status_code == 303, shared.text
        made = await client.post(
            "/v1/packs/acme-basics/stores",
            json={"stores": [store], "inputs": {"threshold": threshold}},
            headers={**studio, "Sous-Workspace": workspace},
        )
        assert made.status_code == 201, made.text
    texts = files.texts() | {
        "templates/sold-out-alert.yaml": template.replace("sold out", "is gone"),
        "pack.yaml": files.text("pack.yaml").replace("version: 1.0.0", "version: 1.1.0"),
    }
    await upload(browser, build_archive(PackFiles.from_texts(texts), "x"), "acme-basics-1.1.0")
    # The preview for every client changes nothing; applying it upgrades both.
    preview = await browser.get(
        "/console/packs/acme-basics/upgrade", params={"to": "1.1.0", "clients": "on"}
    )
    assert preview.status_code == 200, preview.text
    assert 'id="plan-north"' in preview.text and 'id="plan-south"' in preview.text
    for workspace in CLIENTS:
        listed = await client.get("/v1/packs", headers={**studio, "Sous-Workspace": workspace})
        installed = [p["version"] for p in listed.json()["data"] if p["installed"]]
        assert installed == ["1.0.0"]
    applied = await browser.post(
        "/console/packs/acme-basics/upgrade",
        data={"csrf": csrf_of(preview.text), "to": "1.1.0", "clients": "on"},
    )
    assert applied.status_code == 303, applied.text
    assert "count=2" in applied.headers["location"]
    for workspace, (store, threshold) in CLIENTS.items():
        there = {**studio, "Sous-Workspace": workspace}
        [made] = (await client.get("/v1/recipes", headers=there)).json()["data"]
        assert made["source"] == "template:acme-basics@1.1.0/sold-out-alert"
        assert made["document"]["conditions"][0]["<="][1] == threshold
        event = {
            "type": "test.stock",
            "store": store,
            "payload": {"product": {"id": 1, "name": "T", "inventory_level": 0}},
        }
        assert (await client.post("/v1/events", json=event, headers=there)).status_code == 202
    await engine.drain()
    # Each client's usage and audit pages, opened in the console.
    for workspace in CLIENTS:
        opened = await post(browser, f"/console/workspaces/{workspace}/open")
        assert opened.status_code == 303
        usage = await browser.get("/console/usage")
        assert usage.status_code == 200
        audit = await browser.get("/console/audit")
        assert "acme-basics@1.1.0" in audit.text and "is gone" in audit.text
        assert "console:key:" in audit.text
    await post(browser, "/console/workspaces/studio/open")
    archived = await post(browser, "/console/workspaces/south", archived="true")
    assert archived.headers["location"] == "/console/workspaces?done=archived"
    assert (
        await client.get("/v1/recipes", headers={**studio, "Sous-Workspace": "south"})
    ).status_code == 409


async def test_another_agency_reaches_none_of_its_clients(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, api_db: Database
) -> None:
    studio = {
        "Authorization": f"Bearer {create_key(api_db, 'studio', ['admin'], 'a', agency=True)}"
    }
    await client.post("/v1/workspaces", json={"name": "North"}, headers=studio)
    await client.post("/v1/recipes", json=recipe(), headers={**studio, "Sous-Workspace": "north"})
    rival = create_key(api_db, "rival", ["admin"], "r", agency=True)
    assert (await sign_in(browser, rival)).status_code == 303
    await client.post("/v1/recipes", json=recipe(), headers={"Authorization": f"Bearer {rival}"})
    page = await browser.get("/console/workspaces")
    assert "north" not in page.text
    for changed in ({"name": "Mine"}, {"archived": "true"}, {"limits": "set"}):
        assert (await post(browser, "/console/workspaces/north", **changed)).status_code == 404
    assert (await post(browser, "/console/workspaces/studio", name="Mine")).status_code == 404
    form = await browser.get("/console/recipes/sold-out-alert/copy")
    assert "north" not in form.text
    copied = await browser.post(
        "/console/recipes/sold-out-alert/copy",
        data={"csrf": csrf_of(form.text), "workspace": "north"},
    )
    assert copied.status_code == 422 and 'id="err-workspace"' in copied.text
    assert (await client.get("/v1/recipes", headers={**studio, "Sous-Workspace": "north"})).json()[
        "data"
    ][0]["id"] == "sold-out-alert"
    assert (await post(browser, "/console/workspaces/north/open")).status_code == 404
    plain = create_key(api_db, "north", ["admin"], "n")
    browser.cookies.clear()
    assert (await sign_in(browser, plain)).status_code == 303
    made = await post(browser, "/console/workspaces", name="Sneaky")
    assert made.status_code == 403
