"""The packs page through the front door: the real app and database, archives uploaded as a
browser sends them (multipart), downloads from an https server on 127.0.0.1 through the outbound
guard (allowed by the settings the way the API's tests allow it), and upgrades."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from connectors.http.guard import OutboundPolicy
from engine.packs.archive import build_archive, read_folder, sha256
from engine.packs.models import InstalledPackRow, TemplateInstanceRow
from engine.store.db import Database
from sous.container import Container
from sous.settings import Settings
from tests.console.conftest import csrf_of, sign_in
from tests.packs.conftest import PackHost, pack_host, write_pack  # noqa: F401  (fixture)
from tests.templates.conftest import STOCK_TEMPLATE

NEWER_TEMPLATE = STOCK_TEMPLATE.replace(
    "  prefix:\n", '  suffix:\n    type: string\n    default: "!"\n  prefix:\n'
).replace('message: "[[ inputs.prefix ]]:', 'message: "[[ inputs.prefix ]][[ inputs.suffix ]]:')


@pytest.fixture
def settings() -> Settings:
    """Downloads from 127.0.0.1 allowed, as the API's pack tests allow them."""
    return Settings(max_body_bytes=200_000, outbound_allow_hosts=["127.0.0.1"])


def archive(tmp_path: Path, version: str = "1.0.0", template: str = STOCK_TEMPLATE) -> bytes:
    folder = write_pack(
        tmp_path / version, name="demo", version=version, templates={"stock.yaml": template}
    )
    return build_archive(read_folder(folder), f"demo-{version}")


def installed(db: Database, workspace: str = "default") -> list[tuple[str, str]]:
    with db.read_session() as s:
        rows = s.exec(select(InstalledPackRow).where(InstalledPackRow.workspace_id == workspace))
        return sorted((r.name, r.version) for r in rows)


def instances(db: Database) -> list[tuple[str, str]]:
    with db.read_session() as s:
        return sorted((r.recipe_slug, r.pack_version) for r in s.exec(select(TemplateInstanceRow)))


async def upload(
    http: httpx.AsyncClient, data: bytes, *, pin: str = "", csrf: str | None = None
) -> httpx.Response:
    page = await http.get("/console/packs")
    token = csrf_of(page.text) if csrf is None else csrf
    return await http.post(
        "/console/packs/upload",
        data={"csrf": token, "sha256": pin},
        files={"archive": ("demo.tar.gz", data, "application/gzip")},
    )


async def test_upload_installs_and_lists_the_pack(
    signed_in: httpx.AsyncClient, api_db: Database, tmp_path: Path
) -> None:
    data = archive(tmp_path)
    refused = await upload(signed_in, data, pin="0" * 64)
    assert refused.status_code == 422
    assert "SHA-256 mismatch" in html.unescape(refused.text)
    assert installed(api_db) == []
    done = await upload(signed_in, data, pin=sha256(data))
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/console/packs?notice=installed&pack=demo%401.0.0"
    page = await signed_in.get(done.headers["location"])
    assert "Pack demo@1.0.0 is installed" in page.text
    row = page.text[page.text.index('<th scope="row">demo') :]
    row = row[: row.index("</tr>")]
    assert "1.0.0" in row and "Stock alert" in row and "upload" in row
    assert installed(api_db) == [("demo", "1.0.0")]
    again = await upload(signed_in, data)
    assert again.headers["location"].startswith("/console/packs?notice=unchanged")
    broken = await upload(signed_in, b"not an archive")
    assert broken.status_code == 422
    assert 'role="alert"' in broken.text
    empty = await upload(signed_in, b"")
    assert empty.status_code == 422 and "choose a pack archive" in empty.text


async def test_install_from_a_url_goes_through_the_guard(
    signed_in: httpx.AsyncClient,
    api_db: Database,
    container: Container,
    pack_host: PackHost,  # noqa: F811
    tmp_path: Path,
) -> None:
    container.pack_verify = pack_host.verify
    data = archive(tmp_path)
    pack_host.files["/demo.tar.gz"] = data
    page = await signed_in.get("/console/packs")
    token = csrf_of(page.text)
    plain = await signed_in.post(
        "/console/packs/install", data={"csrf": token, "url": "http://127.0.0.1/demo.tar.gz"}
    )
    assert plain.status_code == 422 and "https only" in plain.text
    not_a_url = await signed_in.post(
        "/console/packs/install", data={"csrf": token, "url": "https://[::1/demo.tar.gz"}
    )
    assert not_a_url.status_code == 422 and "not a URL" in not_a_url.text
    done = await signed_in.post(
        "/console/packs/install",
        data={"csrf": token, "url": pack_host.url("/demo.tar.gz"), "sha256": sha256(data)},
    )
    assert done.status_code == 303, done.text
    assert installed(api_db) == [("demo", "1.0.0")]
    assert pack_host.seen == ["/demo.tar.gz"]


async def test_loopback_downloads_are_refused_unless_allowed(
    signed_in: httpx.AsyncClient,
    api_db: Database,
    container: Container,
    pack_host: PackHost,  # noqa: F811
    tmp_path: Path,
) -> None:
    container.services.add(OutboundPolicy.from_settings(Settings()))  # nothing allowed
    container.pack_verify = pack_host.verify
    pack_host.files["/demo.tar.gz"] = archive(tmp_path)
    page = await signed_in.get("/console/packs")
    refused = await signed_in.post(
        "/console/packs/install",
        data={"csrf": csrf_of(page.text), "url": pack_host.url("/demo.tar.gz")},
    )
    assert refused.status_code == 422
    assert "a loopback address" in refused.text
    assert pack_host.seen == [] and installed(api_db) == []


async def test_library_packs_install_from_the_page(
    signed_in: httpx.AsyncClient, api_db: Database
) -> None:
    page = await signed_in.get("/console/packs")
    offered = re.search(r'name="library" value="catalog@([^"]+)"', page.text)
    assert offered, "the library's catalog pack is not offered"
    version = offered.group(1)
    done = await signed_in.post(
        "/console/packs/install",
        data={"csrf": csrf_of(page.text), "library": f"catalog@{version}"},
    )
    assert done.status_code == 303
    assert installed(api_db) == [("catalog", version)]
    after = (await signed_in.get("/console/packs")).text
    assert 'value="catalog@' not in after  # no longer offered as not installed


async def test_upgrade_preview_lists_the_changes_and_apply_moves_the_recipes(
    signed_in: httpx.AsyncClient, api_db: Database, tmp_path: Path
) -> None:
    assert (await upload(signed_in, archive(tmp_path))).status_code == 303
    form = await signed_in.get("/console/templates/demo/stock-alert")
    made = await signed_in.post(
        "/console/templates/demo/stock-alert",
        data={"csrf": csrf_of(form.text), "input.threshold": "3", "do": "save"},
    )
    assert made.status_code == 303, made.text
    newer = archive(tmp_path, "1.1.0", NEWER_TEMPLATE)
    assert (await upload(signed_in, newer)).status_code == 303
    listing = (await signed_in.get("/console/packs")).text
    assert 'href="/console/packs/demo/upgrade?to=1.1.0"' in listing
    plan = await signed_in.get("/console/packs/demo/upgrade", params={"to": "1.1.0"})
    assert plan.status_code == 200, plan.text
    text = html.unescape(plan.text)
    assert "stock-alert" in text and "input 'suffix' = '!' (new, default)" in text
    assert "+    message: 'Heads up!: {{ product.name }}" in text  # the recipe's diff
    assert instances(api_db) == [("stock-alert", "1.0.0")]  # a preview changes nothing
    applied = await signed_in.post(
        "/console/packs/demo/upgrade", data={"csrf": csrf_of(plan.text), "to": "1.1.0"}
    )
    assert applied.status_code == 303, applied.text
    assert "notice=upgraded" in applied.headers["location"]
    assert instances(api_db) == [("stock-alert", "1.1.0")]
    done = await signed_in.get(applied.headers["location"])
    assert "Upgraded 1 recipe(s) to demo@1.1.0." in done.text
    nothing = await signed_in.get("/console/packs/demo/upgrade", params={"to": "1.1.0"})
    assert "Nothing to upgrade" in nothing.text
    missing = await signed_in.get("/console/packs/demo/upgrade", params={"to": "9.0.0"})
    assert missing.status_code == 422 and "has no version" in missing.text


async def test_csrf_scopes_and_workspaces(
    signed_in: httpx.AsyncClient,
    browser_other: httpx.AsyncClient,
    api_db: Database,
    tmp_path: Path,
) -> None:
    data = archive(tmp_path)
    forged = await upload(signed_in, data, csrf="forged")
    assert forged.status_code == 403
    no_token = await signed_in.post(
        "/console/packs/upload", files={"archive": ("demo.tar.gz", data, "application/gzip")}
    )
    assert no_token.status_code == 403
    assert installed(api_db) == []
    assert (await upload(signed_in, data)).status_code == 303
    other = (await browser_other.get("/console/packs")).text
    assert '<th scope="row">demo' not in other
    assert (await browser_other.get("/console/packs/demo/upgrade")).status_code == 404
    # a write key may upgrade but not install
    refused = await upload(browser_other, data)
    assert refused.status_code == 403
    assert installed(api_db, "other") == []


@pytest.fixture
async def browser_other(app, new_key):
    """A second browser, signed in to workspace ``other`` with a write key."""
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sous.test") as http:
        assert (await sign_in(http, new_key("other", "write"))).status_code == 303
        yield http
