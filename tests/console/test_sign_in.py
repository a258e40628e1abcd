"""Signing in and out of the console, sessions, and CSRF."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter
from fastapi.routing import iter_route_contexts
from sqlmodel import select

from api.console.auth import COOKIE, open_session
from api.tables import ApiKeyRow, ConsoleSessionRow
from engine.clock import ManualClock
from engine.store.db import Database
from tests.console.conftest import BASE, csrf_of, sign_in


def _cookie_line(answer: httpx.Response, name: str) -> str:
    lines = [v for v in answer.headers.get_list("set-cookie") if v.startswith(name + "=")]
    assert len(lines) == 1, answer.headers.get_list("set-cookie")
    return lines[0]


async def test_pages_send_the_signed_out_to_sign_in_and_back(browser, new_key) -> None:
    away = await browser.get("/console/?from=mail")
    assert away.status_code == 303
    assert away.headers["location"] == "/console/sign-in?next=/console/%3Ffrom%3Dmail"
    form = await browser.get(away.headers["location"])
    assert form.status_code == 200
    assert 'name="next" value="/console/?from=mail"' in form.text
    assert '<label for="key">API key</label>' in form.text
    answer = await browser.post(
        "/console/sign-in",
        data={"key": new_key(), "csrf": csrf_of(form.text), "next": "/console/?from=mail"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/?from=mail"
    home = await browser.get("/console/")
    assert home.status_code == 200
    assert "default" in home.text


async def test_the_session_cookie_is_httponly_lax_and_secure_over_https(app: Any, new_key) -> None:
    key = new_key()
    for base, secure in (("http://sous.test", False), ("https://sous.test", True)):
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=base) as http:
            answer = await sign_in(http, key)
        assert answer.status_code == 303, answer.text
        line = _cookie_line(answer, COOKIE).lower()
        assert "httponly" in line
        assert "samesite=lax" in line
        assert "path=/;" in line or line.endswith("path=/")
        assert ("secure" in line.split("; ")) is secure
        token = line.split(";", 1)[0].split("=", 1)[1]
        assert len(token) >= 40


async def test_the_token_is_kept_hashed(signed_in, api_db: Database) -> None:
    token = signed_in.cookies[COOKIE]
    with api_db.read_session() as s:
        rows = s.exec(select(ConsoleSessionRow)).all()
    assert len(rows) == 1
    assert rows[0].id != token and token not in rows[0].model_dump_json()
    assert rows[0].workspace_id == "default" and rows[0].scopes == ["admin"]


async def test_a_wrong_key_is_refused_and_opens_nothing(browser, new_key) -> None:
    new_key()
    for wrong in ("sous_not-a-real-key", "hello", ""):
        answer = await sign_in(browser, wrong)
        assert answer.status_code == 401
        assert "unknown or revoked" in answer.text
        assert COOKIE not in browser.cookies
        assert 'aria-invalid="true"' in answer.text
    assert (await browser.get("/console/")).status_code == 303


async def test_sign_in_needs_its_own_form(browser, new_key) -> None:
    key = new_key()
    no_form = await browser.post("/console/sign-in", data={"key": key, "csrf": "made-up"})
    assert no_form.status_code == 403
    assert COOKIE not in browser.cookies
    form = await browser.get("/console/sign-in")
    forged = await browser.post(
        "/console/sign-in",
        data={"key": key, "csrf": csrf_of(form.text)},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    assert COOKIE not in browser.cookies


async def test_next_never_leaves_the_console(browser, new_key) -> None:
    key = new_key()
    for target in ("https://evil.example/", "//evil.example/x", "/v1/keys", "/console\\@evil"):
        answer = await sign_in(browser, key, next_url=target)
        assert answer.headers["location"] == "/console/", target


async def test_sign_out_ends_the_session(signed_in, api_db: Database) -> None:
    token = signed_in.cookies[COOKIE]
    home = await signed_in.get("/console/")
    out = await signed_in.post("/console/sign-out", data={"csrf": csrf_of(home.text)})
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    assert 'sous_session=""' in _cookie_line(out, COOKIE) or "max-age=0" in _cookie_line(
        out, COOKIE
    )
    with api_db.read_session() as s:
        assert s.exec(select(ConsoleSessionRow)).all() == []
    signed_in.cookies.set(COOKIE, token)  # the old cookie, replayed
    assert (await signed_in.get("/console/")).status_code == 303


async def test_changes_need_the_sessions_csrf_token(app: Any, signed_in, new_key) -> None:
    mine = csrf_of((await signed_in.get("/console/")).text)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as other:
        await sign_in(other, new_key("default", "admin"))
        theirs = csrf_of((await other.get("/console/")).text)
    assert theirs != mine
    for data in ({}, {"csrf": ""}, {"csrf": theirs}):
        refused = await signed_in.post("/console/sign-out", data=data)
        assert refused.status_code == 403, data
        assert "This form has expired" in refused.text
        assert refused.headers["content-type"].startswith("text/html")
    assert (await signed_in.get("/console/")).status_code == 200  # still signed in
    wrong_header = await signed_in.post("/console/sign-out", headers={"X-CSRF-Token": theirs})
    assert wrong_header.status_code == 403
    other_site = await signed_in.post(
        "/console/sign-out", data={"csrf": mine}, headers={"Origin": "https://evil.example"}
    )
    assert other_site.status_code == 403
    by_header = await signed_in.post(
        "/console/sign-out", headers={"X-CSRF-Token": mine, "Origin": BASE}
    )
    assert by_header.status_code == 303


async def test_every_console_change_is_refused_without_the_token(app: Any, signed_in) -> None:
    """Every route under /console that changes something (pages added later too)."""
    checked = 0
    for context in iter_route_contexts(app.routes):
        path = context.path or ""
        methods = getattr(context.original_route, "methods", None) or set()
        if not path.startswith("/console/") or path == "/console/sign-in":
            continue
        for method in sorted(methods & {"POST", "PUT", "PATCH", "DELETE"}):
            url = path.replace("{", "").replace("}", "")
            answer = await signed_in.request(method, url, data={"csrf": "wrong"})
            assert answer.status_code == 403, (method, path, answer.status_code)
            checked += 1
    assert checked >= 1


async def test_htmx_requests_without_a_session_are_told_where_to_go(browser) -> None:
    answer = await browser.get("/console/", headers={"HX-Request": "true"})
    assert answer.status_code == 401
    assert answer.headers["hx-redirect"] == "/console/sign-in?next=/console/"


async def test_revoking_the_key_through_the_api_ends_its_sessions(
    signed_in, new_key, api_db: Database
) -> None:
    with api_db.read_session() as s:
        key_id = s.exec(select(ApiKeyRow.id)).one()
    admin = {"Authorization": f"Bearer {new_key('default', 'admin')}"}
    revoked = await signed_in.delete(f"/v1/keys/{key_id}", headers=admin)
    assert revoked.status_code == 204
    assert (await signed_in.get("/console/")).status_code == 303


async def test_an_idle_session_ends_after_twelve_hours(signed_in, clock: ManualClock) -> None:
    clock.advance(11 * 3600)
    assert (await signed_in.get("/console/")).status_code == 200  # used: extended
    clock.advance(11 * 3600)
    assert (await signed_in.get("/console/")).status_code == 200
    clock.advance(12 * 3600 + 1)
    assert (await signed_in.get("/console/")).status_code == 303


async def test_a_session_opened_for_a_stores_user(
    browser, api_db: Database, clock: ManualClock
) -> None:
    opened = open_session(api_db, "acme", scopes=["read"], user_id="bc-user-7", now=clock.now())
    browser.cookies.set(COOKIE, opened.token)
    home = await browser.get("/console/")
    assert home.status_code == 200
    assert "acme" in home.text


async def test_an_unexpected_failure_is_a_page(app: Any, signed_in) -> None:
    boom = APIRouter()

    @boom.get("/console/boom")
    def fail() -> None:
        raise RuntimeError("kaboom")

    app.include_router(boom)
    answer = await signed_in.get("/console/boom")
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in answer.text and "kaboom" not in answer.text
    assert answer.headers["x-request-id"] in answer.text
