"""The settings page: API keys (shown once, revoked), secrets (write-only), staff e-mail."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlmodel import select

from api.tables import ApiKeyRow, ConsoleSessionRow, WorkspaceSettingsRow
from engine.store.db import Database
from tests.console.conftest import BASE, csrf_of, sign_in

_KEY = re.compile(r"sous_[A-Za-z0-9_-]{43}")


async def _csrf(http: httpx.AsyncClient) -> str:
    return csrf_of((await http.get("/console/settings")).text)


async def test_a_new_key_is_shown_once_and_works(signed_in, client) -> None:
    csrf = await _csrf(signed_in)
    made = await signed_in.post(
        "/console/settings/keys", data={"csrf": csrf, "name": "ERP sync", "scope": "write"}
    )
    assert made.status_code == 200
    shown = _KEY.findall(made.text)
    assert len(shown) == 1
    assert "shown only this once" in made.text
    works = await client.get("/v1/recipes", headers={"Authorization": f"Bearer {shown[0]}"})
    assert works.status_code == 200
    again = await signed_in.get("/console/settings")
    assert "ERP sync" in again.text and "write" in again.text
    assert _KEY.findall(again.text) == []
    assert shown[0][:11] in again.text  # its prefix tells it apart


async def test_a_key_needs_a_name_and_a_known_scope(signed_in, api_db: Database) -> None:
    csrf = await _csrf(signed_in)
    for data in ({"name": "", "scope": "read"}, {"name": "x", "scope": "root"}):
        refused = await signed_in.post("/console/settings/keys", data={"csrf": csrf, **data})
        assert refused.status_code == 422
        assert "Give the key a name" in refused.text
    with api_db.read_session() as s:
        assert len(s.exec(select(ApiKeyRow)).all()) == 1  # the session's own


async def test_revoking_a_key_ends_its_sessions(
    app: Any, signed_in, new_key, api_db: Database, client
) -> None:
    other_key = new_key("default", "read")
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as other:
        assert (await sign_in(other, other_key)).status_code == 303
        assert (await other.get("/console/")).status_code == 200
        with api_db.read_session() as s:
            key_id = s.exec(select(ApiKeyRow.id).where(ApiKeyRow.scopes == ["read"])).one()
        revoked = await signed_in.post(
            f"/console/settings/keys/{key_id}/revoke", data={"csrf": await _csrf(signed_in)}
        )
        assert revoked.status_code == 303
        assert revoked.headers["location"] == "/console/settings?done=key-revoked"
        assert (await other.get("/console/")).status_code == 303  # signed out
    with api_db.read_session() as s:
        left = s.exec(select(ConsoleSessionRow).where(ConsoleSessionRow.key_id == key_id)).all()
    assert left == []
    api = await client.get("/v1/recipes", headers={"Authorization": f"Bearer {other_key}"})
    assert api.status_code == 401
    page = await signed_in.get("/console/settings?done=key-revoked")
    assert "every console session opened with it has ended" in page.text
    assert "revoked" in page.text


async def test_revoking_the_sessions_own_key_signs_it_out(signed_in, api_db: Database) -> None:
    with api_db.read_session() as s:
        key_id = s.exec(select(ApiKeyRow.id)).one()
    answer = await signed_in.post(
        f"/console/settings/keys/{key_id}/revoke", data={"csrf": await _csrf(signed_in)}
    )
    assert answer.headers["location"] == "/console/sign-in"
    assert (await signed_in.get("/console/settings")).status_code == 303


async def test_secrets_are_write_only(signed_in, client, admin) -> None:
    csrf = await _csrf(signed_in)
    value = "hunter2-very-secret-value"
    saved = await signed_in.post(
        "/console/settings/secrets", data={"csrf": csrf, "name": "ERP_TOKEN", "value": value}
    )
    assert saved.status_code == 303
    page = await signed_in.get(saved.headers["location"])
    assert "ERP_TOKEN" in page.text and value not in page.text
    replaced = await signed_in.post(
        "/console/settings/secrets",
        data={"csrf": csrf, "name": "ERP_TOKEN", "value": value + "-2"},
    )
    assert replaced.status_code == 303
    page = await signed_in.get("/console/settings")
    assert value not in page.text and page.text.count(">ERP_TOKEN<") == 1
    listed = await client.get("/v1/secrets", headers=admin)
    assert listed.json()["data"] == [{"name": "ERP_TOKEN"}]
    bad = await signed_in.post(
        "/console/settings/secrets", data={"csrf": csrf, "name": "9lives", "value": value}
    )
    assert bad.status_code == 422 and value not in bad.text
    deleted = await signed_in.post(
        "/console/settings/secrets/ERP_TOKEN/delete", data={"csrf": csrf}
    )
    assert deleted.status_code == 303
    assert (await client.get("/v1/secrets", headers=admin)).json()["data"] == []
    gone = await signed_in.post("/console/settings/secrets/ERP_TOKEN/delete", data={"csrf": csrf})
    assert gone.status_code == 404 and "No such secret" in gone.text


async def test_staff_email_defaults_to_the_setting_and_can_be_set(
    signed_in, api_db: Database, settings
) -> None:
    page = await signed_in.get("/console/settings")
    assert settings.staff_email in page.text and "SOUS_STAFF_EMAIL" in page.text
    csrf = csrf_of(page.text)
    bad = await signed_in.post(
        "/console/settings/staff-email", data={"csrf": csrf, "staff_email": "not an address"}
    )
    assert bad.status_code == 422 and "not an e-mail address" in bad.text
    assert "Alerts are <strong>switched off</strong>" not in page.text
    form = {"csrf": csrf, "staff_email": "ops@acme.example", "alerts": "on"}
    saved = await signed_in.post("/console/settings/staff-email", data=form)
    assert saved.status_code == 303
    page = await signed_in.get("/console/settings")
    assert "ops@acme.example" in page.text and "(the default" not in page.text
    with api_db.read_session() as s:
        row = s.get(WorkspaceSettingsRow, "default")
    assert row is not None and (row.staff_email, row.alerts) == ("ops@acme.example", True)
    cleared = await signed_in.post(
        "/console/settings/staff-email", data={"csrf": csrf, "staff_email": "", "alerts": "on"}
    )
    assert cleared.status_code == 303
    assert "(the default" in (await signed_in.get("/console/settings")).text
    off = await signed_in.post(  # an unticked box is not sent
        "/console/settings/staff-email", data={"csrf": csrf, "staff_email": "ops@acme.example"}
    )
    assert off.status_code == 303
    page = await signed_in.get("/console/settings")
    assert "Alerts are <strong>switched off</strong>" in page.text
    with api_db.read_session() as s:
        row = s.get(WorkspaceSettingsRow, "default")
    assert row is not None and (row.staff_email, row.alerts) == ("ops@acme.example", False)


async def test_read_sessions_see_a_read_only_page(browser, new_key, api_db: Database) -> None:
    assert (await sign_in(browser, new_key("default", "read"))).status_code == 303
    page = await browser.get("/console/settings")
    assert page.status_code == 200
    assert "may look but not change" in page.text
    assert 'action="/console/settings/keys"' not in page.text
    assert 'action="/console/settings/secrets"' not in page.text
    csrf = csrf_of(page.text)
    for path, data in (
        ("/console/settings/keys", {"name": "sneaky", "scope": "admin"}),
        ("/console/settings/secrets", {"name": "X", "value": "y"}),
        ("/console/settings/staff-email", {"staff_email": "a@b.example"}),
    ):
        refused = await browser.post(path, data={"csrf": csrf, **data})
        assert refused.status_code == 403, path
        assert "Only an admin can change this" in refused.text
    with api_db.read_session() as s:
        assert [k.name for k in s.exec(select(ApiKeyRow)).all()] == ["test"]


async def test_settings_show_only_the_sessions_workspace(
    browser, new_key, make_key, client
) -> None:
    theirs = make_key("acme", "admin")
    await client.put("/v1/secrets/ACME_ONLY", json={"value": "acme-value"}, headers=theirs)
    acme_key = await client.post(
        "/v1/keys", json={"name": "acme-erp", "scopes": ["read"]}, headers=theirs
    )
    assert acme_key.status_code == 201
    assert (await sign_in(browser, new_key("default", "admin"))).status_code == 303
    page = (await browser.get("/console/settings")).text
    assert "ACME_ONLY" not in page and "acme-erp" not in page and "acme-value" not in page
    acme_id = acme_key.json()["id"]
    csrf = csrf_of(page)
    refused = await browser.post(f"/console/settings/keys/{acme_id}/revoke", data={"csrf": csrf})
    assert refused.status_code == 404
    gone = await browser.post("/console/settings/secrets/ACME_ONLY/delete", data={"csrf": csrf})
    assert gone.status_code == 404
    still = await client.get("/v1/secrets", headers=theirs)
    assert still.json()["data"] == [{"name": "ACME_ONLY"}]
