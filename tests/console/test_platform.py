"""Headers, static files, /docs offline, / to the console, and error pages beside JSON errors."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

from api.console.security import CSP

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'self' https://*.bigcommerce.com "
    "https://*.mybigcommerce.com; form-action 'self'; base-uri 'none'"
)


def _secured(headers) -> None:
    assert headers["content-security-policy"] == EXPECTED_CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert "x-frame-options" not in headers  # frame-ancestors lets the store's panel frame it


def test_the_policy_allows_no_inline_code() -> None:
    assert CSP == EXPECTED_CSP
    assert "unsafe" not in CSP


async def test_pages_docs_and_assets_carry_the_security_headers(signed_in) -> None:
    for path in (
        "/console/",
        "/console/sign-in",
        "/console/no-such-page",
        "/docs",
        "/console/static/console.css",
    ):
        answer = await signed_in.get(path)
        _secured(answer.headers)
    page = await signed_in.get("/console/")
    assert page.headers["cache-control"] == "no-store"


async def test_pages_have_no_inline_script_or_style(signed_in) -> None:
    for path in ("/console/", "/console/settings", "/docs", "/console/sign-in"):
        html = (await signed_in.get(path)).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert "<style" not in html and " style=" not in html, path
        assert not re.search(r"\son[a-z]+=", html), path
        assert "http://" not in html and "https://" not in html, path


async def test_the_api_keeps_json_errors_and_no_page_headers(client, admin) -> None:
    answer = await client.get("/v1/nope", headers=admin)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert "content-security-policy" not in answer.headers
    page = await client.get("/console/nope")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text and "Go to the home page" in page.text


async def test_the_root_leads_to_the_console(client) -> None:
    answer = await client.get("/")
    assert answer.status_code in (302, 303, 307)
    assert answer.headers["location"] == "/console/"
    bare = await client.get("/console")
    assert bare.status_code in (307, 308)
    assert bare.headers["location"].endswith("/console/")


async def test_docs_load_everything_from_this_server(client) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert sources and all(s.startswith("/console/static/") for s in sources), sources
    for source in sources:
        asset = await client.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 100, source
    bundle = await client.get("/console/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text
    assert 'data-openapi-url="/openapi.json"' in docs.text
    assert (await client.get("/openapi.json")).status_code == 200


async def test_static_assets_and_their_licences_are_served(client) -> None:
    htmx = await client.get("/console/static/vendor/htmx/htmx.min.js")
    assert htmx.status_code == 200
    assert htmx.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "htmx" in htmx.text
    css = await client.get("/console/static/console.css")
    assert css.headers["content-type"].startswith("text/css")
    for licence in ("vendor/htmx/LICENSE", "vendor/swagger-ui/LICENSE", "vendor/swagger-ui/NOTICE"):
        assert (await client.get(f"/console/static/{licence}")).status_code == 200
    missing = await client.get("/console/static/nope.js")
    assert missing.status_code == 404


def test_static_files_and_templates_are_package_data() -> None:
    package = resources.files("api.console")
    vendored = (package / "static" / "VENDORED.md").read_text()
    assert "htmx.org" in vendored and "2.0.11" in vendored and "0BSD" in vendored
    assert "swagger-ui-dist" in vendored and "5.36.0" in vendored and "Apache-2.0" in vendored
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = config["tool"]["setuptools"]["package-data"]["api.console"]
    folder = ROOT / "api" / "console"
    shipped = {p for p in folder.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")}
    covered = {p for pattern in data for p in folder.glob(pattern) if p.is_file()}
    assert shipped and shipped <= covered, sorted(map(str, shipped - covered))
