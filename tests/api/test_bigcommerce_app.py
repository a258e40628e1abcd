"""Sous as a BigCommerce single-click app, over HTTP against the simulator: install (the OAuth
code grant), load, several users, remove_user and uninstall, and every way a callback is
refused (apps/guide: auth.mdx, callbacks.mdx, users.mdx)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from api.console.auth import Visitor
from api.tables import ConsoleSessionRow
from connectors.backorder.script import SCRIPT_NAME
from connectors.backorder.service import Backorders
from connectors.bigcommerce.stores import SECRET_HEADER, BigCommerceStores
from engine import Cipher, StoreRow
from tests.api.app_rig import (
    CLIENT_ID,
    CLIENT_SECRET,
    SCOPES,
    SECRET_KEY,
    AppRig,
    app_rig,
    session_token,
)
from tests.connectors.bigcommerce.harness import insert_store

pytestmark = pytest.mark.asyncio


def _into_console(answer: httpx.Response) -> None:
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/"
    assert answer.headers["cache-control"] == "no-store"
    assert session_token(answer)


def _hooks(row: StoreRow) -> list[Any]:
    hooks: list[Any] = (row.info or {})["webhooks"]["hooks"]
    return hooks


def _signed_in(rig: AppRig, answer: httpx.Response) -> Visitor:
    visitor = rig.visitor(answer)
    assert visitor is not None
    return visitor


async def test_owner_installs_opens_and_uninstalls(tmp_path: Path) -> None:
    async with app_rig(tmp_path) as rig:
        browser = rig.browser()
        answer = await rig.install(browser)
        _into_console(answer)
        # The token request carried every documented field, and the code was accepted.
        assert rig.sim.apps.token_requests == [
            {
                "fields": sorted(
                    [
                        "client_id",
                        "client_secret",
                        "code",
                        "context",
                        "scope",
                        "grant_type",
                        "redirect_uri",
                    ]
                ),
                "outcome": "ok",
            }
        ]
        installed = rig.sim.apps.installation(rig.store, CLIENT_ID)
        row = rig.store_row()
        assert row is not None
        assert row.workspace_id == f"bc-{rig.store_hash}" and row.name == "Acme Outdoor"
        assert row.api_base_url == f"{rig.sim_url}/stores/{rig.store_hash}"
        # Kept encrypted: not in the row as is, and the app's token once decrypted.
        assert installed.access_token not in row.access_token_enc
        assert Cipher(SECRET_KEY).decrypt(row.access_token_enc) == installed.access_token
        assert len(rig.our_hooks()) == len(_hooks(row)) > 10
        assert all(h.is_active for h in rig.our_hooks())
        owner = _signed_in(rig, answer)
        assert owner.workspace == row.workspace_id
        assert owner.scopes == {"read", "write", "admin"}
        assert owner.user_id == f"bigcommerce:{rig.store_hash}:{rig.owner_id()}"
        install = rig.install_row()
        assert install is not None and install.owner_id == rig.owner_id()
        assert set(install.scope.split()) == set(SCOPES)
        assert install.account_uuid == rig.sim.apps.app(CLIENT_ID).account_uuid

        home = await browser.get(f"{rig.sous_url}/console/")
        assert home.status_code == 200, home.text

        loaded = await rig.load(rig.browser())
        _into_console(loaded)
        assert _signed_in(rig, loaded).scopes == {"read", "write", "admin"}

        callback = await rig.uninstall()
        assert callback["status"] == 200, callback
        assert callback["body"] == f'{{"uninstalled":"{rig.store_hash}"}}'
        # Sous deleted its webhooks itself (while its token still worked) ...
        deleted = [r for r in rig.store.requests if r.method == "DELETE" and "/hooks/" in r.path]
        assert len(deleted) == len(_hooks(row))
        assert all(r.status == 200 for r in deleted) and rig.our_hooks() == []
        # ... disconnected the store (its token erased with its row) and ended every session.
        assert rig.store_row() is None and rig.install_row() is None and rig.users() == {}
        assert rig.visitor(answer) is None and rig.visitor(loaded) is None
        assert rig.store.app_tokens == {}  # and BigCommerce revoked the token afterwards
        home = await browser.get(f"{rig.sous_url}/console/", follow_redirects=False)
        assert home.status_code in (303, 307) and "/console/sign-in" in home.headers["location"]


async def test_multiple_users_each_get_their_own_access(tmp_path: Path) -> None:
    async with app_rig(tmp_path) as rig:
        owner = await rig.install(rig.browser())
        _into_console(owner)
        clerk_id = await rig.add_user("clerk@acme.example")
        await rig.give_app(clerk_id)

        clerk_browser = rig.browser()
        clerk = await rig.load(clerk_browser, clerk_id)
        _into_console(clerk)
        visitor = _signed_in(rig, clerk)
        assert visitor.scopes == {"read", "write"}  # not the owner: no admin
        assert visitor.workspace == _signed_in(rig, owner).workspace
        assert visitor.user_id == f"bigcommerce:{rig.store_hash}:{clerk_id}"
        users = rig.users()
        assert set(users) == {rig.owner_id(), clerk_id}
        assert users[rig.owner_id()].is_owner and not users[clerk_id].is_owner
        assert users[clerk_id].email == "clerk@acme.example"
        assert users[clerk_id].last_load_at is not None

        callback = await rig.remove_user(clerk_id)
        assert callback["status"] == 200 and '"removed":true' in callback["body"], callback
        assert rig.visitor(clerk) is None  # the clerk's session ended ...
        assert rig.visitor(owner) is not None  # ... the owner's did not
        assert set(rig.users()) == {rig.owner_id()}
        assert rig.store_row() is not None
        gone = await clerk_browser.get(f"{rig.sous_url}/console/", follow_redirects=False)
        assert "/console/sign-in" in gone.headers["location"]
        refused = await rig.http.get(
            rig.control(f"/apps/{CLIENT_ID}/load"), params={"user_id": clerk_id}
        )
        assert refused.status_code == 403  # BigCommerce no longer offers them the app

        await rig.give_app(clerk_id)  # given back: a load provisions them again
        again = await rig.load(rig.browser(), clerk_id)
        _into_console(again)
        assert set(rig.users()) == {rig.owner_id(), clerk_id}


async def test_an_authorized_user_installs_and_the_owner_is_known_too(tmp_path: Path) -> None:
    async with app_rig(tmp_path) as rig:
        manager = await rig.add_user("manager@acme.example", can_install=True)
        answer = await rig.install(rig.browser(), manager)
        _into_console(answer)
        visitor = _signed_in(rig, answer)
        assert visitor.user_id == f"bigcommerce:{rig.store_hash}:{manager}"
        assert visitor.scopes == {"read", "write", "admin"}
        install = rig.install_row()
        assert install is not None and install.installed_by == manager
        assert install.owner_id == rig.owner_id()
        assert set(rig.users()) == {manager, rig.owner_id()}
        later = await rig.load(rig.browser(), manager)
        assert _signed_in(rig, later).scopes == {"read", "write", "admin"}
        # A plain user may neither install nor uninstall (the control panel refuses).
        clerk = await rig.add_user("clerk@acme.example")
        start = f"/apps/{CLIENT_ID}/install"
        assert (
            await rig.http.get(rig.control(start), params={"user_id": clerk})
        ).status_code == 403
        callback = await rig.uninstall(manager)
        assert callback["status"] == 200 and rig.store_row() is None


async def _load_status(rig: AppRig, token: str) -> httpx.Response:
    browser = rig.browser()
    return await browser.get(
        f"{rig.sous_url}/bigcommerce/load", params={"signed_payload_jwt": token}
    )


FORGERIES: dict[str, Any] = {
    "another secret": ({}, "not-the-client-secret", {}),
    "another app": ({"aud": "someone-elses-app"}, CLIENT_SECRET, {}),
    "another issuer": ({"iss": "not-bc"}, CLIENT_SECRET, {}),
    "expired": ({"exp": 0}, CLIENT_SECRET, {}),
    "not valid yet": ({"nbf": 4_000_000_000}, CLIENT_SECRET, {}),
    "no store": ({"sub": "customers/12"}, CLIENT_SECRET, {}),
    "no user": ({"user": None}, CLIENT_SECRET, {}),
    "no jti": ({"jti": ""}, CLIENT_SECRET, {}),
    "alg none": ({}, CLIENT_SECRET, {"alg": "none", "typ": "JWT"}),
    "alg HS512": ({}, CLIENT_SECRET, {"alg": "HS512", "typ": "JWT"}),
}


async def test_forged_expired_and_foreign_payloads_are_refused(tmp_path: Path) -> None:
    async with app_rig(tmp_path) as rig:
        _into_console(await rig.install(rig.browser()))
        sessions_before = _sessions(rig)
        for name, (changes, secret, header) in FORGERIES.items():
            token = rig.signed(rig.claims(**changes), secret, **header)
            page = await _load_status(rig, token)
            assert page.status_code == 401, name
            assert "text/html" in page.headers["content-type"] and session_token(page) is None
            for callback in ("uninstall", "remove_user"):
                url = f"{rig.sous_url}/bigcommerce/{callback}"
                answer = await rig.http.get(url, params={"signed_payload_jwt": token})
                assert answer.status_code == 401, (name, callback)
                assert answer.json()["error"]["code"] == "unauthorized"
        for junk in ("", "a.b", "not-a-jwt", "a.b.c", "x" * 9000):
            assert (await _load_status(rig, junk)).status_code == 401, junk
        # Nothing happened: the same sessions, the store still installed.
        assert _sessions(rig) == sessions_before
        assert rig.store_row() is not None and rig.install_row() is not None
        # A genuine load URL whose 24 hours have passed is refused as well.
        stale = await rig.load_url()
        rig.clock.advance(24 * 3600 + 60)
        page = await rig.browser().get(stale)
        assert page.status_code == 401 and "expired" in page.text


def _sessions(rig: AppRig) -> list[str]:
    with rig.db.session() as s:
        return sorted(r.id for r in s.exec(select(ConsoleSessionRow)))


async def test_a_code_works_once_and_a_load_url_once(tmp_path: Path) -> None:
    async with app_rig(tmp_path) as rig:
        browser = rig.browser()
        start = rig.control(f"/apps/{CLIENT_ID}/install")
        auth_url = (await browser.get(start)).headers["location"]
        _into_console(await browser.get(auth_url))
        replayed = await rig.browser().get(auth_url)
        assert replayed.status_code == 400 and session_token(replayed) is None
        assert "refused the install code" in replayed.text
        assert [r["outcome"] for r in rig.sim.apps.token_requests] == ["ok", "invalid_grant"]
        assert len(rig.sim.apps.installs) == 1

        load_url = await rig.load_url()
        _into_console(await rig.browser().get(load_url))
        again = await rig.browser().get(load_url)
        assert again.status_code == 401 and session_token(again) is None
        assert "used already" in again.text


async def test_scopes_other_than_configured_stop_the_install(tmp_path: Path) -> None:
    async with app_rig(tmp_path, sim_scopes=[*SCOPES, "store_v2_transactions"]) as rig:
        answer = await rig.install(rig.browser())
        assert answer.status_code == 400 and session_token(answer) is None
        assert "store_v2_transactions" in answer.text
        assert rig.sim.apps.token_requests == []  # the code was never spent
        assert rig.store_row() is None
    fewer = [s for s in SCOPES if s != "store_v2_content"]
    async with app_rig(tmp_path / "fewer", sim_scopes=fewer) as rig:
        answer = await rig.install(rig.browser())
        assert answer.status_code == 400 and "missing store_v2_content" in answer.text
        assert rig.sim.apps.token_requests == []


async def test_uninstall_needs_the_owner_or_a_known_user(tmp_path: Path) -> None:
    async with app_rig(tmp_path) as rig:
        _into_console(await rig.install(rig.browser()))
        stranger = {"id": 424242, "email": "stranger@example.com", "locale": "en-US"}
        token = rig.signed(rig.claims(user=stranger))
        url = f"{rig.sous_url}/bigcommerce/uninstall"
        answer = await rig.http.get(url, params={"signed_payload_jwt": token})
        assert answer.status_code == 403 and rig.store_row() is not None
        # An uninstall payload issued before this install (replayed later) is refused too.
        early = rig.claims(iat=0, nbf=0)
        answer = await rig.http.get(url, params={"signed_payload_jwt": rig.signed(early)})
        assert answer.status_code == 401 and rig.store_row() is not None


async def test_installing_again_keeps_one_store_with_the_new_token(tmp_path: Path) -> None:
    async with app_rig(tmp_path) as rig:
        _into_console(await rig.install(rig.browser()))
        first = rig.store_row()
        assert first is not None
        old_token = rig.sim.apps.installation(rig.store, CLIENT_ID).access_token
        _into_console(await rig.install(rig.browser()))
        second = rig.store_row()
        new_token = rig.sim.apps.installation(rig.store, CLIENT_ID).access_token
        assert second is not None and second.id == first.id and new_token != old_token
        assert Cipher(SECRET_KEY).decrypt(second.access_token_enc) == new_token
        assert len(rig.our_hooks()) == len(_hooks(first))  # not doubled


async def test_stores_go_to_the_installing_users_workspace(tmp_path: Path) -> None:
    async with app_rig(tmp_path, bigcommerce_app_workspace="user") as rig:
        owner = await rig.install(rig.browser())
        workspace = _signed_in(rig, owner).workspace
        assert workspace == f"bcu-{rig.owner_id()}"
        second = rig.sim.add_store(seed=False, name="Acme Outlet")
        await rig.http.post(
            f"{rig.sim_url}/_sim/stores/{second.store_hash}/users",
            json={"email": "owner-a@acme.example", "can_install": True, "id": rig.owner_id()},
        )
        other = await rig.install(rig.browser(), rig.owner_id(), store=second)
        _into_console(other)
        assert _signed_in(rig, other).workspace == workspace
        row = rig.store_row(second.store_hash)
        assert row is not None and row.workspace_id == workspace


async def test_one_named_workspace_takes_over_a_pasted_token(tmp_path: Path) -> None:
    async with app_rig(tmp_path, bigcommerce_app_workspace="default") as rig:
        pasted = insert_store(
            rig.db,
            store_hash=rig.store_hash,
            token=rig.store.access_token,
            base_url=f"{rig.sim_url}/stores/{rig.store_hash}",
            secret="whsec-pasted-0123456789",
        )
        answer = await rig.install(rig.browser())
        _into_console(answer)
        assert _signed_in(rig, answer).workspace == "default"
        row = rig.store_row()
        assert row is not None and row.id == pasted and row.workspace_id == "default"
        token = rig.sim.apps.installation(rig.store, CLIENT_ID).access_token
        assert Cipher(SECRET_KEY).decrypt(row.access_token_enc) == token
        assert Cipher(SECRET_KEY).decrypt(row.webhook_secret_enc) == "whsec-pasted-0123456789"
        assert all(h.headers == {SECRET_HEADER: "whsec-pasted-0123456789"} for h in rig.our_hooks())


async def test_without_app_credentials_the_callbacks_say_so(tmp_path: Path) -> None:
    async with app_rig(tmp_path, configured=False) as rig:
        answer = await rig.install(rig.browser())
        assert answer.status_code == 503 and "SOUS_BIGCOMMERCE_CLIENT_ID" in answer.text
        url = f"{rig.sous_url}/bigcommerce/uninstall"
        token = rig.signed(rig.claims())
        assert (await rig.http.get(url, params={"signed_payload_jwt": token})).status_code == 503


async def test_the_token_exchange_goes_through_the_outbound_guard(tmp_path: Path) -> None:
    async with app_rig(tmp_path, outbound_allow_hosts=[]) as rig:
        answer = await rig.install(rig.browser())
        assert answer.status_code == 502 and "outbound guard" in answer.text
        assert rig.sim.apps.token_requests == [] and rig.store_row() is None


async def test_load_follows_the_deep_link_and_ends_with_the_session(tmp_path: Path) -> None:
    async with app_rig(tmp_path) as rig:
        _into_console(await rig.install(rig.browser()))
        panel = await rig.http.get(
            rig.control(f"/apps/{CLIENT_ID}/load"), params={"url": "/settings"}
        )
        answer = await rig.browser().get(panel.headers["location"])
        assert answer.status_code == 303 and answer.headers["location"] == "/console/settings"
        rig.clock.advance(timedelta(days=8).total_seconds())
        assert rig.visitor(answer) is None  # console sessions end as any other


async def test_the_storefront_script_comes_with_the_install_and_goes_with_it(
    tmp_path: Path,
) -> None:
    async with app_rig(tmp_path) as rig:
        _into_console(await rig.install(rig.browser()))
        [script] = rig.store.scripts.values()
        assert script["api_client_id"] == CLIENT_ID  # made with the app's own token
        assert script["name"] == SCRIPT_NAME and script["auto_uninstall"] is True
        assert script["consent_category"] == "essential"
        row = rig.store_row()
        assert row is not None and (row.info or {})["storefront_script"] == {"uuid": script["uuid"]}
        callback = await rig.uninstall()
        assert callback["status"] == 200
        deleted = [r for r in rig.store.requests if r.path.startswith("/v3/content/scripts/")]
        assert [(r.method, r.status) for r in deleted] == [("DELETE", 204)]
        assert rig.store.scripts == {}


async def test_a_script_the_merchant_deleted_is_repaired_only_by_installing_again(
    tmp_path: Path,
) -> None:
    async with app_rig(tmp_path) as rig:
        _into_console(await rig.install(rig.browser()))
        [uuid] = list(rig.store.scripts)
        del rig.store.scripts[uuid]  # Script Manager: the merchant deletes it
        backorders = rig.container.services.get(Backorders)
        stores = rig.container.services.get(BigCommerceStores)
        row = rig.store_row()
        assert row is not None
        client = (await stores.get(row.workspace_id, rig.store_hash)).client
        backorders.scripts._written.clear()  # as if the assignments had changed
        assert await backorders.scripts.refresh(client, row.workspace_id, rig.store_hash) is None
        assert rig.store.scripts == {}  # not put back behind the merchant's back
        noted = (rig.store_row().info or {})["storefront_script"]  # type: ignore[union-attr]
        assert noted["uuid"] == uuid and noted["deleted_at"]
        assert await backorders.scripts.refresh(client, row.workspace_id, rig.store_hash) is None
        _into_console(await rig.install(rig.browser()))  # installing again repairs it
        [again] = rig.store.scripts.values()
        assert again["uuid"] != uuid
        assert (rig.store_row().info or {})["storefront_script"] == {"uuid": again["uuid"]}  # type: ignore[union-attr]
