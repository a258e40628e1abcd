"""Templates and packs through the HTTP API: the real app over ASGI, a real database."""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from sqlmodel import SQLModel

import api.tables  # noqa: F401  (registers the api_key table)
from api.app import create_app
from api.keys import create_key
from api.routes.packs import routers
from engine import Engine
from engine.clock import ManualClock
from engine.model.events import NewEvent
from engine.packs.archive import build_archive, read_folder, sha256
from engine.registry import Registry
from engine.store.db import Database
from sous.container import Container
from sous.settings import Settings
from tests.packs.conftest import RECIPE, PackHost, write_pack
from tests.templates.conftest import STOCK_TEMPLATE

Headers = dict[str, str]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = write_pack(tmp_path / "library", name="lib")
    return root


@contextlib.asynccontextmanager
async def sous_api(container: Container, pack_host: PackHost) -> AsyncIterator[httpx.AsyncClient]:
    container.routers.extend(routers())
    container.pack_verify = pack_host.verify
    app = create_app(container)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://sous.test"
    ) as http:
        yield http


@pytest.fixture
def make_container(
    db: Database, registry: Registry, engine: Engine, clock: ManualClock, library: Path
) -> Callable[[Settings], Container]:
    SQLModel.metadata.create_all(db.engine)

    def make(settings: Settings) -> Container:
        return Container(
            settings, db, registry, engine, engine.services, clock, pack_library=library.parent
        )

    return make


@pytest.fixture
async def client(
    make_container: Callable[[Settings], Container], library: Path, pack_host: PackHost
) -> AsyncIterator[httpx.AsyncClient]:
    """The API, allowed to download packs from the https server on 127.0.0.1 (which serves
    the library's pack at ``/lib.tar.gz``)."""
    pack_host.files["/lib.tar.gz"] = build_archive(read_folder(library), "lib-1.0.0")
    settings = Settings(max_body_bytes=200_000, outbound_allow_hosts=["127.0.0.1"])
    async with sous_api(make_container(settings), pack_host) as http:
        yield http


@pytest.fixture
def headers(db: Database) -> dict[str, Headers]:
    def key(*scopes: str) -> Headers:
        return {"Authorization": f"Bearer {create_key(db, 'acme', list(scopes), 'test')}"}

    return {"read": key("read"), "write": key("write"), "admin": key("admin")}


async def test_templates_are_listed_with_their_schema_and_made_into_running_recipes(
    client: httpx.AsyncClient, headers: dict[str, Headers], engine: Engine
) -> None:
    listed = await client.get("/v1/templates", headers=headers["read"])
    assert listed.status_code == 200
    [entry] = listed.json()["data"]
    assert (entry["ref"], entry["installed"], entry["trigger"]) == (
        "lib/stock-alert",
        False,
        "test.stock",
    )
    schema = (
        await client.get("/v1/templates/lib/stock-alert/schema", headers=headers["read"])
    ).json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["staff"]["type"] == "array"
    detail = (await client.get("/v1/templates/lib/stock-alert", headers=headers["read"])).json()
    assert detail["inputs_schema"] == schema
    assert detail["template"]["inputs"]["threshold"]["default"] == 5
    url = "/v1/templates/lib/stock-alert/instantiate"
    refused = await client.post(url, json={"inputs": {"threshold": 5000}}, headers=headers["write"])
    assert refused.status_code == 422
    assert refused.json()["error"]["details"] == [
        {"path": "/inputs/threshold", "message": "must be ≤ 1000"}
    ]
    forbidden = await client.post(url, json={}, headers=headers["read"])
    assert forbidden.status_code == 403
    dry = await client.post(
        url, json={"inputs": {"threshold": 2}, "dry_run": True}, headers=headers["write"]
    )
    assert dry.status_code == 200
    assert dry.json()["recipe"] is None
    assert dry.json()["document"]["conditions"][0]["<="][1] == 2
    made = await client.post(
        url, json={"inputs": {"threshold": 2}, "store": "s1"}, headers=headers["write"]
    )
    assert made.status_code == 201, made.text
    assert made.json()["recipe"]["id"] == "stock-alert-s1"
    assert made.json()["pack"] == "lib@1.0.0"
    result = await engine.ingest(
        NewEvent(
            type="test.stock",
            workspace="acme",
            store="s1",
            payload={"product": {"id": 1, "name": "Tent", "inventory_level": 1}},
        )
    )
    assert len(result.runs) == 1  # the dispatcher knows the new recipe at once
    packs = (await client.get("/v1/packs", headers=headers["read"])).json()["data"]
    assert [(p["name"], p["installed"], p["recipes"]) for p in packs] == [("lib", True, 1)]


async def test_install_from_url_upload_and_library(
    client: httpx.AsyncClient, headers: dict[str, Headers], tmp_path: Path, pack_host: PackHost
) -> None:
    body = {"url": pack_host.url("/lib.tar.gz"), "recipes": True}
    assert (await client.post("/v1/packs", json=body, headers=headers["write"])).status_code == 403
    insecure = await client.post(
        "/v1/packs", json={"url": "http://packs.example/lib.tar.gz"}, headers=headers["admin"]
    )
    assert insecure.status_code == 422
    installed = await client.post("/v1/packs", json=body, headers=headers["admin"])
    assert installed.status_code == 201, installed.text
    assert installed.json()["new"] is True
    assert [r["id"] for r in installed.json()["recipes"]] == ["log-every-stock-change"]
    again = await client.post("/v1/packs", json={"library": "lib"}, headers=headers["admin"])
    assert again.status_code == 201
    assert again.json()["new"] is False
    v2 = build_archive(
        read_folder(write_pack(tmp_path / "v2", name="lib", version="2.0.0")), "lib-2.0.0"
    )
    pinned = await client.post(
        "/v1/packs/archive",
        params={"sha256": "0" * 64},
        content=v2,
        headers={**headers["admin"], "Content-Type": "application/gzip"},
    )
    assert pinned.status_code == 422
    assert "SHA-256 mismatch" in pinned.json()["error"]["message"]
    uploaded = await client.post(
        "/v1/packs/archive",
        params={"sha256": sha256(v2)},
        content=v2,
        headers={**headers["admin"], "Content-Type": "application/gzip"},
    )
    assert uploaded.status_code == 201
    assert uploaded.json()["pack"]["version"] == "2.0.0"
    shown = (await client.get("/v1/packs/lib/2.0.0", headers=headers["read"])).json()
    assert shown["readme"] == "# demo\n"
    assert shown["sha256"] == sha256(v2)
    assert shown["made_recipes"] == []


async def test_downloads_go_through_the_outbound_guard(
    make_container: Callable[[Settings], Container],
    headers: dict[str, Headers],
    library: Path,
    pack_host: PackHost,
) -> None:
    pack_host.files["/lib.tar.gz"] = build_archive(read_folder(library), "lib-1.0.0")
    pack_host.redirects["/moved"] = "https://10.20.30.40/lib.tar.gz"
    async with sous_api(make_container(Settings()), pack_host) as http:
        for url, reason in (
            (pack_host.url("/lib.tar.gz"), "a loopback address"),
            ("https://10.20.30.40/lib.tar.gz", "a private address"),
        ):
            refused = await http.post("/v1/packs", json={"url": url}, headers=headers["admin"])
            assert refused.status_code == 422, refused.text
            error = refused.json()["error"]
            assert error["code"] == "outbound_refused"
            assert "SOUS_OUTBOUND_ALLOW_HOSTS" in error["message"]
            assert error["details"] == [{"path": "/url", "message": reason}]
    assert pack_host.seen == []  # never connected
    allowed = Settings(outbound_allow_hosts=["127.0.0.1"])
    async with sous_api(make_container(allowed), pack_host) as http:
        body = {"url": pack_host.url("/moved")}  # each redirect hop is checked too
        hop = await http.post("/v1/packs", json=body, headers=headers["admin"])
        assert hop.status_code == 422, hop.text
        assert hop.json()["error"]["details"] == [{"path": "/url", "message": "a private address"}]
        body = {"url": pack_host.url("/lib.tar.gz")}
        installed = await http.post("/v1/packs", json=body, headers=headers["admin"])
        assert installed.status_code == 201, installed.text
    assert pack_host.seen == ["/moved", "/lib.tar.gz"]


async def test_a_pack_with_code_is_refused_with_details(
    client: httpx.AsyncClient, headers: dict[str, Headers]
) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for name, data in (("pack.yaml", b"name: x\nversion: 1.0.0\n"), ("evil.py", b"import os")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    refused = await client.post(
        "/v1/packs/archive",
        content=raw.getvalue(),
        headers={**headers["admin"], "Content-Type": "application/gzip"},
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_pack"
    assert "evil.py" in refused.json()["error"]["message"]
    wrong_type = await client.post(
        "/v1/packs/archive",
        content=b"{}",
        headers={**headers["admin"], "Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 415


async def test_upgrade_plan_then_apply_and_stores_and_export(
    client: httpx.AsyncClient, headers: dict[str, Headers], tmp_path: Path
) -> None:
    await client.post("/v1/packs", json={"library": "lib"}, headers=headers["admin"])
    made = await client.post(
        "/v1/packs/lib/stores",
        json={"stores": ["s1", "s2"], "inputs": {"threshold": 4}},
        headers=headers["write"],
    )
    assert made.status_code == 201
    assert [r["id"] for r in made.json()["recipes"]] == [
        "stock-alert-s1",
        "stock-alert-s2",
    ]
    unknown = await client.post(
        "/v1/packs/lib/stores",
        json={"stores": ["s3"], "inputs": {"threshold": 4}, "templates": ["nope"]},
        headers=headers["write"],
    )
    assert unknown.status_code == 422  # the pack exists; the body names a template it lacks
    [detail] = unknown.json()["error"]["details"]
    assert detail["path"] == "/templates" and "nope" in detail["message"]
    renamed = STOCK_TEMPLATE.replace("  prefix:\n", "  intro:\n").replace(
        "inputs.prefix", "inputs.intro"
    )
    v2 = build_archive(
        read_folder(
            write_pack(tmp_path / "v2", name="lib", version="2.0.0", templates={"t.yaml": renamed})
        ),
        "lib-2.0.0",
    )
    await client.post(
        "/v1/packs/archive",
        content=v2,
        headers={**headers["admin"], "Content-Type": "application/gzip"},
    )
    plan = (await client.post("/v1/packs/lib/upgrade", json={}, headers=headers["write"])).json()
    assert plan["ok"] is False
    assert plan["applied"] is False
    assert len(plan["recipes"]) == 2
    assert "removed in 2.0.0" in plan["recipes"][0]["problems"][0]["message"]
    refused = await client.post(
        "/v1/packs/lib/upgrade", json={"apply": True}, headers=headers["write"]
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "upgrade_refused"
    applied = await client.post(
        "/v1/packs/lib/upgrade",
        json={"apply": True, "map": {"prefix": "intro"}},
        headers=headers["write"],
    )
    assert applied.status_code == 200
    assert applied.json()["applied"] is True
    report = applied.json()["report"]
    assert "stock-alert-s1: stock-alert 1.0.0 → 2.0.0\n  input 'prefix' → 'intro'" in report
    recipe = (await client.get("/v1/recipes/stock-alert-s1", headers=headers["read"])).json()
    assert recipe["source"] == "template:lib@2.0.0/stock-alert"
    assert recipe["version"] == 2
    exported = await client.post(
        "/v1/packs/export", json={"name": "acme", "version": "1.0.0"}, headers=headers["read"]
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/gzip"
    assert exported.headers["x-pack-sha256"] == sha256(exported.content)
    gone = await client.delete(
        "/v1/packs/lib/2.0.0", params={"delete_recipes": True}, headers=headers["admin"]
    )
    assert gone.status_code == 200
    assert gone.json() == {"deleted_recipes": ["stock-alert-s1", "stock-alert-s2"]}
    missing = await client.get("/v1/packs/lib/2.0.0", headers=headers["read"])
    assert missing.status_code == 404


async def test_an_upgrade_to_a_version_the_pack_does_not_have_is_422_naming_the_field(
    client: httpx.AsyncClient, headers: dict[str, Headers]
) -> None:
    await client.post("/v1/packs", json={"library": "lib"}, headers=headers["admin"])
    missing = await client.post(
        "/v1/packs/lib/upgrade", json={"to": "9.9.9"}, headers=headers["write"]
    )
    assert missing.status_code == 422, missing.text
    assert missing.json()["error"]["details"][0]["path"] == "/to"
    absent = await client.post(
        "/v1/packs/nothing/upgrade", json={"to": "9.9.9"}, headers=headers["write"]
    )
    assert absent.status_code == 404


async def test_an_upgrade_reaches_the_ready_made_recipes_a_pack_was_installed_with(
    client: httpx.AsyncClient, headers: dict[str, Headers], tmp_path: Path
) -> None:
    installed = await client.post(
        "/v1/packs", json={"library": "lib", "recipes": True}, headers=headers["admin"]
    )
    assert [r["id"] for r in installed.json()["recipes"]] == ["log-every-stock-change"]
    packs = (await client.get("/v1/packs", headers=headers["read"])).json()["data"]
    assert [(p["name"], p["version"], p["recipes"]) for p in packs] == [("lib", "1.0.0", 1)]
    newer = RECIPE.replace("changed", "moved")
    v11 = build_archive(
        read_folder(
            write_pack(tmp_path / "v11", name="lib", version="1.1.0", recipes={"log.yaml": newer})
        ),
        "lib-1.1.0",
    )
    uploaded = await client.post(
        "/v1/packs/archive",
        content=v11,
        headers={**headers["admin"], "Content-Type": "application/gzip"},
    )
    assert uploaded.status_code == 201, uploaded.text
    applied = await client.post(
        "/v1/packs/lib/upgrade", json={"to": "1.1.0", "apply": True}, headers=headers["write"]
    )
    assert applied.status_code == 200, applied.text
    assert applied.json()["applied"] is True
    [item] = applied.json()["recipes"]
    assert item["recipe"] == "log-every-stock-change"
    assert (item["from"], item["to"]) == ("1.0.0", "1.1.0")
    assert "+    message: '{{ product.name }} moved'" in item["diff"]
    recipe = (
        await client.get("/v1/recipes/log-every-stock-change", headers=headers["read"])
    ).json()
    assert recipe["source"] == "pack:lib@1.1.0"
    assert recipe["document"]["actions"][0]["with"]["message"] == "{{ product.name }} moved"
    packs = (await client.get("/v1/packs", headers=headers["read"])).json()["data"]
    assert [(p["version"], p["recipes"]) for p in packs] == [("1.0.0", 0), ("1.1.0", 1)]
    again = await client.post(
        "/v1/packs/lib/upgrade", json={"to": "1.1.0", "apply": True}, headers=headers["write"]
    )
    assert again.json()["recipes"] == [] and again.json()["applied"] is False


async def test_a_ready_made_recipe_edited_by_hand_is_not_overwritten_without_force(
    client: httpx.AsyncClient, headers: dict[str, Headers], tmp_path: Path
) -> None:
    body = {"library": "lib", "recipes": True}
    await client.post("/v1/packs", json=body, headers=headers["admin"])
    url = "/v1/recipes/log-every-stock-change"
    current = (await client.get(url, headers=headers["read"])).json()
    edited = current["document"] | {"name": "Mine"}
    changed = await client.put(
        url, json=edited, headers={**headers["write"], "If-Match": f'"{current["version"]}"'}
    )
    assert changed.status_code == 200, changed.text
    v2 = build_archive(
        read_folder(write_pack(tmp_path / "v2", name="lib", version="2.0.0")), "lib-2.0.0"
    )
    await client.post(
        "/v1/packs/archive",
        content=v2,
        headers={**headers["admin"], "Content-Type": "application/gzip"},
    )
    plan = (await client.post("/v1/packs/lib/upgrade", json={}, headers=headers["write"])).json()
    assert plan["ok"] is False
    assert "edited by hand" in plan["recipes"][0]["problems"][0]["message"]
    forced = await client.post(
        "/v1/packs/lib/upgrade", json={"apply": True, "force": True}, headers=headers["write"]
    )
    assert forced.json()["applied"] is True
    assert (await client.get(url, headers=headers["read"])).json()["name"] == current["name"]


async def test_an_agency_shares_a_pack_with_its_clients_and_upgrades_them_all(
    client: httpx.AsyncClient, db: Database, tmp_path: Path
) -> None:
    studio = {"Authorization": f"Bearer {create_key(db, 'studio', ['admin'], 'a', agency=True)}"}
    for name in ("North", "South"):
        made = await client.post("/v1/workspaces", json={"name": name}, headers=studio)
        assert made.status_code == 201, made.text
    await client.post("/v1/packs", json={"library": "lib"}, headers=studio)
    for workspace in ("north", "south"):
        there = {**studio, "Sous-Workspace": workspace}
        shared = await client.post(
            "/v1/packs", json={"shared": "lib@1.0.0", "recipes": True}, headers=there
        )
        assert shared.status_code == 201, shared.text
        assert [r["id"] for r in shared.json()["recipes"]] == ["log-every-stock-change"]
    own = await client.post("/v1/packs", json={"shared": "lib@1.0.0"}, headers=studio)
    assert own.status_code == 422  # only in a client workspace
    newer = RECIPE.replace("changed", "moved")
    v11 = build_archive(
        read_folder(
            write_pack(tmp_path / "v11", name="lib", version="1.1.0", recipes={"log.yaml": newer})
        ),
        "lib-1.1.0",
    )
    await client.post(
        "/v1/packs/archive", content=v11, headers={**studio, "Content-Type": "application/gzip"}
    )
    plan = await client.post("/v1/packs/lib/upgrade", json={"clients": True}, headers=studio)
    assert plan.status_code == 200, plan.text
    assert [(w["workspace"], len(w["recipes"])) for w in plan.json()["workspaces"]] == [
        ("north", 1),
        ("south", 1),
    ]
    assert plan.json()["applied"] is False
    for workspace in ("north", "south"):  # the plan changed nothing: not even an install
        there = {**studio, "Sous-Workspace": workspace}
        packs = (await client.get("/v1/packs", headers=there)).json()["data"]
        assert [(p["version"], p["recipes"]) for p in packs] == [("1.0.0", 1)], workspace
        recipe = await client.get("/v1/recipes/log-every-stock-change", headers=there)
        assert recipe.json()["source"] == "pack:lib@1.0.0", workspace
    done = await client.post(
        "/v1/packs/lib/upgrade", json={"clients": True, "apply": True}, headers=studio
    )
    assert done.json()["applied"] is True
    for workspace in ("north", "south"):
        there = {**studio, "Sous-Workspace": workspace}
        recipe = await client.get("/v1/recipes/log-every-stock-change", headers=there)
        assert recipe.json()["source"] == "pack:lib@1.1.0", workspace
        packs = (await client.get("/v1/packs", headers=there)).json()["data"]
        assert [(p["version"], p["recipes"]) for p in packs] == [("1.0.0", 0), ("1.1.0", 1)]
    in_client = {**studio, "Sous-Workspace": "north"}
    log = (await client.get("/v1/audit?kind=pack", headers=in_client)).json()["data"]
    assert [(e["action"], e["target"]) for e in log] == [
        ("installed", "lib@1.1.0"),
        ("installed", "lib@1.0.0"),
    ]
    refused = await client.post("/v1/packs/lib/upgrade", json={"clients": True}, headers=in_client)
    assert refused.status_code == 403
