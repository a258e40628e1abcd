"""The console through its front door: the real app over ASGI and a real SQLite database (the
API's fixtures), a browser-like client that keeps cookies, and helpers to sign in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.keys import create_key
from engine.store.db import Database
from tests.api.conftest import (  # noqa: F401  (fixtures)
    admin,
    api_db,
    app,
    client,
    container,
    make_key,
    settings,
)

BASE = "http://sous.test"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, key: str, next_url: str = "/console/") -> httpx.Response:
    form = await http.get("/console/sign-in", params={"next": next_url})
    return await http.post(
        "/console/sign-in",
        data={"key": key, "csrf": csrf_of(form.text), "next": next_url},
    )


@pytest.fixture
def new_key(api_db: Database):  # noqa: F811
    """``new_key("acme", "read")`` → a fresh API key of that workspace and scopes."""

    def make(workspace: str = "default", *scopes: str) -> str:
        return create_key(api_db, workspace, list(scopes or ("admin",)), "test")

    return make


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    """A client that keeps cookies and does not follow redirects (tests look at them)."""
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


@pytest.fixture
async def signed_in(browser: httpx.AsyncClient, new_key) -> httpx.AsyncClient:
    """``browser``, signed in with an admin key of workspace ``default``."""
    answer = await sign_in(browser, new_key("default", "admin"))
    assert answer.status_code == 303, answer.text
    return browser
