"""The Scripts API of the simulator (every answer checked against scripts.v3.yml by the
harness) as scripts.mdx describes it per API account, and its app side: the token endpoint
checks every field, a code works once, and uninstalling removes ``auto_uninstall`` scripts."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from connectors.bigcommerce.simulator import Simulator

from .conftest import Harness

SCRIPT = {
    "name": "Hello",
    "kind": "script_tag",
    "html": "<script>console.log(1)</script>",
    "consent_category": "essential",
    "auto_uninstall": True,
}


def install(sim: Simulator, scopes: list[str]) -> tuple[str, dict[str, Any]]:
    """An app installed on the demo store: its client id and the token request that made it."""
    store = sim.demo_store
    app = sim.apps.register(
        {"scopes": scopes, "auth_callback": "https://app.example/auth",
         "load_callback": "https://app.example/load"}
    )  # fmt: skip
    url = sim.apps.start_install(store, app.client_id, None)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    body = {
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "code": query["code"],
        "context": query["context"],
        "scope": query["scope"],
        "grant_type": "authorization_code",
        "redirect_uri": app.auth_callback,
    }
    return app.client_id, body


async def test_the_token_endpoint_checks_every_field(harness: Harness) -> None:
    sim, control = harness.sim, harness.control()
    _, body = install(harness.sim, ["store_v2_content"])
    for field, wrong, error in [
        ("client_secret", "nope", "invalid_client"),
        ("grant_type", "password", "unsupported_grant_type"),
    ]:
        answer = await control.post("/oauth2/token", json={**body, field: wrong})
        assert answer.json()["error"] == error, field
    for field in ("client_id", "code", "context", "scope", "grant_type", "redirect_uri"):
        partial = {k: v for k, v in body.items() if k != field}
        answer = await control.post("/oauth2/token", json=partial)
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request"), field
    answer = await control.post("/oauth2/token", json=body)
    assert answer.status_code == 200, answer.text
    granted = answer.json()
    assert set(granted) == {"access_token", "scope", "user", "owner", "context", "account_uuid"}
    assert granted["context"] == f"stores/{sim.demo_store.store_hash}"
    assert granted["user"] == granted["owner"] and set(granted["user"]) == {
        "id",
        "username",
        "email",
    }
    again = await control.post("/oauth2/token", json=body)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    _, other = install(harness.sim, ["store_v2_content"])
    for field, wrong in [
        ("redirect_uri", "https://evil.example/auth"),
        ("scope", "store_v2_orders"),
    ]:
        answer = await control.post("/oauth2/token", json={**other, field: wrong})
        assert answer.status_code == 400, field
        _, other = install(harness.sim, ["store_v2_content"])  # the refused code is spent
    assert [r["outcome"] for r in sim.apps.token_requests].count("ok") == 1


async def _token(harness: Harness, scopes: list[str]) -> tuple[str, str]:
    client_id, body = install(harness.sim, scopes)
    answer = await harness.control().post("/oauth2/token", json=body)
    return client_id, str(answer.json()["access_token"])


async def test_each_api_account_sees_only_its_own_scripts(harness: Harness) -> None:
    app_id, token = await _token(harness, ["store_v2_content"])
    app = harness.api(token=token)
    own = harness.api()
    made = (await app.post("/v3/content/scripts", json=SCRIPT)).json()["data"]
    assert made["api_client_id"] == app_id and made["kind"] == "script_tag"
    assert (await own.get("/v3/content/scripts")).json()["data"] == []
    assert (await own.get(f"/v3/content/scripts/{made['uuid']}")).status_code == 404
    assert (await own.delete(f"/v3/content/scripts/{made['uuid']}")).status_code == 404
    listed = (await app.get("/v3/content/scripts")).json()["data"]
    assert [s["uuid"] for s in listed] == [made["uuid"]]
    changed = await app.put(f"/v3/content/scripts/{made['uuid']}", json={"enabled": False})
    assert changed.json()["data"]["enabled"] is False


async def test_scripts_are_checked_as_documented(harness: Harness) -> None:
    _, token = await _token(harness, ["store_v2_content"])
    app = harness.api(token=token)
    bad: list[dict[str, Any]] = [
        {**SCRIPT, "name": ""},
        {**SCRIPT, "src": "https://cdn.example/x.js"},
        {**SCRIPT, "html": "console.log(1)"},
        {**SCRIPT, "html": "<script></script>" * 6},
        {**SCRIPT, "load_method": "async"},
        {**SCRIPT, "kind": "src", "html": None},
        {**SCRIPT, "consent_category": "unknown"},
        {**SCRIPT, "visibility": "everywhere"},
    ]
    for body in bad:
        body = {k: v for k, v in body.items() if v is not None}
        assert (await app.post("/v3/content/scripts", json=body)).status_code == 422, body
    checkout = await app.post("/v3/content/scripts", json={**SCRIPT, "visibility": "checkout"})
    assert checkout.status_code == 403  # needs store_content_checkout
    for n in range(10):
        made = await app.post("/v3/content/scripts", json={**SCRIPT, "name": f"s{n}"})
        assert made.status_code == 200
    eleventh = await app.post("/v3/content/scripts", json={**SCRIPT, "name": "s10"})
    assert eleventh.status_code == 422  # ten per app


async def test_an_app_without_the_content_scope_is_refused(harness: Harness) -> None:
    _, token = await _token(harness, ["store_v2_orders"])
    app = harness.api(token=token)
    assert (await app.get("/v3/content/scripts")).status_code == 403
    assert (await app.post("/v3/content/scripts", json=SCRIPT)).status_code == 403


async def test_uninstalling_revokes_the_token_and_removes_auto_uninstall_scripts(
    harness: Harness,
) -> None:
    sim = harness.sim
    app_id, token = await _token(harness, ["store_v2_content"])
    app = harness.api(token=token)
    await app.post("/v3/content/scripts", json=SCRIPT)
    await app.post("/v3/content/scripts", json={**SCRIPT, "name": "kept", "auto_uninstall": False})
    control = harness.control()
    answer = await control.delete(f"/_sim/stores/{sim.demo_store.store_hash}/apps/{app_id}")
    assert answer.json() == {"callback": None}  # no uninstall callback registered
    assert [s["name"] for s in sim.demo_store.scripts.values()] == ["kept"]
    raw = httpx.AsyncClient(
        transport=httpx.ASGITransport(harness.app),
        base_url=f"http://sim.test/stores/{sim.demo_store.store_hash}",
        headers={"X-Auth-Token": token},
    )
    async with raw:
        assert (await raw.get("/v3/content/scripts")).status_code == 401
