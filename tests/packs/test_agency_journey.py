"""An agency's journey through the front door: it onboards two clients, exports one of its
recipes as a template pack (per-client values as typed inputs), shares the pack, makes each
client's recipe with the client's own inputs, upgrades the pack once for every client, and
reads each client's usage and audit log; no client ever sees the other."""

from __future__ import annotations

from typing import Any

import httpx

from api.keys import create_key
from engine import Engine
from engine.packs.archive import PackFiles, build_archive, read_archive
from engine.store.db import Database
from tests.packs.test_api import client, library, make_container  # noqa: F401  (fixtures)

Headers = dict[str, str]
LOW_STOCK: dict[str, Any] = {
    "id": "low-stock",
    "name": "Warn when stock is low",
    "trigger": {"type": "test.stock"},
    "conditions": [{"<=": [{"var": "product.inventory_level"}, 3]}],
    "actions": [
        {
            "id": "warn",
            "use": "test.record",
            "with": {
                "message": "{{ product.name }} is low",
                "data": {"to": ["ops@studio.example"]},
            },
        }
    ],
}


def in_(headers: Headers, workspace: str) -> Headers:
    return {**headers, "Sous-Workspace": workspace}


async def upload(http: httpx.AsyncClient, headers: Headers, data: bytes) -> None:
    sent = await http.post(
        "/v1/packs/archive", content=data, headers={**headers, "Content-Type": "application/gzip"}
    )
    assert sent.status_code == 201, sent.text


async def test_an_agency_onboards_shares_upgrades_and_reads_each_client(
    client: httpx.AsyncClient,  # noqa: F811  (the fixture imported above)
    db: Database,
    engine: Engine,
) -> None:
    studio = {"Authorization": f"Bearer {create_key(db, 'studio', ['admin'], 'a', agency=True)}"}
    for name in ("North", "South"):
        made = await client.post("/v1/workspaces", json={"name": name}, headers=studio)
        assert made.status_code == 201
    assert (await client.post("/v1/recipes", json=LOW_STOCK, headers=studio)).status_code == 201
    exported = await client.post(
        "/v1/packs/export",
        json={
            "name": "acme-basics",
            "version": "1.0.0",
            "templates": True,
            "inputs": {"low-stock": {"threshold": "/conditions/0/<=/1"}},
        },
        headers=studio,
    )
    assert exported.status_code == 200, exported.text
    files = read_archive(exported.content)
    template = files.text("templates/low-stock.yaml")
    assert "[[ inputs.threshold ]]" in template and "[[ inputs.warn_to ]]" in template
    await upload(client, studio, exported.content)
    clients = {"north": ("nnn", 2, "ops@north.example"), "south": ("sss", 7, "ops@south.example")}
    for workspace, (store, threshold, address) in clients.items():
        shared = await client.post(
            "/v1/packs", json={"shared": "acme-basics@1.0.0"}, headers=in_(studio, workspace)
        )
        assert shared.status_code == 201, shared.text
        inputs = {"threshold": threshold, "warn_to": [address]}
        made = await client.post(
            "/v1/packs/acme-basics/stores",
            json={"stores": [store], "inputs": inputs},
            headers=in_(studio, workspace),
        )
        assert made.status_code == 201, made.text
    texts = files.texts() | {
        "templates/low-stock.yaml": template.replace("is low", "is running low"),
        "pack.yaml": files.text("pack.yaml").replace("version: 1.0.0", "version: 1.1.0"),
    }
    await upload(client, studio, build_archive(PackFiles.from_texts(texts), "acme-basics-1.1.0"))
    upgraded = await client.post(
        "/v1/packs/acme-basics/upgrade", json={"clients": True, "apply": True}, headers=studio
    )
    assert upgraded.status_code == 200, upgraded.text
    assert upgraded.json()["applied"] is True
    assert [w["workspace"] for w in upgraded.json()["workspaces"]] == ["north", "south"]
    for workspace, (store, threshold, address) in clients.items():
        there = in_(studio, workspace)
        [recipe] = (await client.get("/v1/recipes", headers=there)).json()["data"]
        assert recipe["source"] == "template:acme-basics@1.1.0/low-stock"
        document = recipe["document"]
        assert document["conditions"][0]["<="][1] == threshold  # the client's own input kept
        assert document["actions"][0]["with"]["data"]["to"] == [address]
        assert "is running low" in document["actions"][0]["with"]["message"]
        event = {
            "type": "test.stock",
            "store": store,
            "payload": {"product": {"inventory_level": 1}},
        }
        assert (await client.post("/v1/events", json=event, headers=there)).status_code == 202
    await engine.drain()
    for workspace in clients:
        there = in_(studio, workspace)
        usage = (await client.get("/v1/usage", headers=there)).json()
        assert (usage["today"]["runs"], usage["today"]["steps"]) == (1, 1), workspace
        log = (await client.get("/v1/audit", headers=there)).json()["data"]
        assert [(e["kind"], e["action"]) for e in log][:4] == [
            ("recipe", "updated"),
            ("pack", "installed"),
            ("recipe", "created"),
            ("pack", "installed"),
        ]
        assert '"message": "{{ product.name }} is running low"' in log[0]["diff"]
    own = {"Authorization": f"Bearer {create_key(db, 'north', ['admin'], 'north')}"}
    assert (await client.get("/v1/recipes", headers=in_(own, "south"))).status_code == 403
    assert (await client.get("/v1/usage", headers=own)).json()["today"]["runs"] == 1
