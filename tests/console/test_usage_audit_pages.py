"""The usage and audit pages through the front door: what the API reads, as pages for admins;
changes made in the console are logged as the console visitor's."""

from __future__ import annotations

import html
import re

import httpx

from engine import Engine
from tests.api.conftest import product, recipe
from tests.console.conftest import csrf_of, sign_in

Headers = dict[str, str]


def cells(page: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.S)
        ]
        for r in rows
    ]


async def test_the_usage_page_shows_days_stores_and_todays_limits(
    signed_in: httpx.AsyncClient, client: httpx.AsyncClient, admin: Headers, engine: Engine, api_db
) -> None:
    from engine import Workspace

    await client.post("/v1/recipes", json=recipe(), headers=admin)
    for store in ("s1", "s1", "s2"):
        body = {"type": "test.stock", "store": store, "payload": product(0)}
        assert (await client.post("/v1/events", json=body, headers=admin)).status_code == 202
    await engine.drain()
    with api_db.session() as session:
        row = session.get(Workspace, "default")
        row.limits = {"runs": 3}
        session.add(row)
        session.commit()
    page = await signed_in.get("/console/usage")
    assert page.status_code == 200, page.text
    table = cells(page.text)
    assert ["Runs", "3 limit reached", "3"] in table
    assert ["Steps", "6", "none"] in table
    assert ["2026-11-27", "3", "6", "0", "0", "0"] in table
    by_store = cells((await signed_in.get("/console/usage?by=store")).text)
    assert ["2026-11-27", "s1", "2", "4", "0", "0", "0"] in by_store
    assert ["2026-11-27", "s2", "1", "2", "0", "0", "0"] in by_store
    bad = await signed_in.get("/console/usage?since=yesterday")
    assert bad.status_code == 422
    assert "is not a day such as 2026-12-07" in html.unescape(bad.text)
    assert 'href="/console/usage"' in page.text  # in the navigation


async def test_the_audit_page_lists_changes_with_their_diffs_and_filters(
    signed_in: httpx.AsyncClient, client: httpx.AsyncClient, admin: Headers
) -> None:
    await client.post("/v1/recipes", json=recipe(), headers=admin)
    await client.put(
        "/v1/recipes/sold-out-alert",
        json=recipe(name="Sold out!", version=1),
        headers={**admin, "Sous-Reason": "shorter"},
    )
    settings = await signed_in.get("/console/settings")
    saved = await signed_in.post(
        "/console/settings/secrets",
        data={"csrf": csrf_of(settings.text), "name": "ERP_TOKEN", "value": "s3cret"},
    )
    assert saved.status_code == 303
    page = await signed_in.get("/console/audit")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Why: shorter" in text
    assert '+  "name": "Sold out!",' in text
    assert "s3cret" not in text
    table = cells(page.text)
    secret = next(r for r in table if "ERP_TOKEN" in r)
    assert secret[1].startswith("console:key:") and secret[2:4] == ["secret", "created"]
    recipes_only = cells((await signed_in.get("/console/audit?kind=recipe")).text)
    assert [r[3] for r in recipes_only[1:]] == ["updated", "created"]
    wrong = await signed_in.get("/console/audit?kind=nonsense")
    assert wrong.status_code == 422


async def test_usage_and_audit_are_for_admins(browser: httpx.AsyncClient, new_key) -> None:
    answer = await sign_in(browser, new_key("default", "write"))
    assert answer.status_code == 303
    for path in ("/console/usage", "/console/audit"):
        assert (await browser.get(path)).status_code == 403, path
