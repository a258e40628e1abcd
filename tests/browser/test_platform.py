"""What holds on every page: it works offline (no request leaves 127.0.0.1, checked by the
``new_tab`` fixture on every test), shows no console error, renders inside a store's control
panel frame, and ``/docs`` is the API reference without the internet."""

from __future__ import annotations

import re

import pytest

from api.console.render import NAV
from tests.browser.harness import SandboxServer, landed
from tests.browser.tab import Tab, expect

PAGES = tuple(item.href for item in NAV)
"""The sections of the console's navigation."""

FRAMING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A store's control panel</title></head>
<body><h1>Control panel</h1>
<iframe src="{src}" title="Sous console" width="1200" height="700"></iframe>
</body></html>"""
"""A stand-in for the page that frames the console (BigCommerce's control panel in use)."""


@pytest.mark.parametrize("path", PAGES)
def test_every_page_loads_offline_without_console_errors(console: Tab, path: str) -> None:
    if not landed(path):
        pytest.skip(f"the console has no page at {path} yet")
    console.open(path)
    page = console.page
    expect(page.get_by_role("heading", level=1).first).to_be_visible()
    current = page.get_by_role("navigation", name="Sections").locator("[aria-current=page]")
    expect(current).to_have_attribute("href", path)


def test_the_navigation_leads_to_every_section(console: Tab) -> None:
    page = console.page
    for path in PAGES:
        if not landed(path):
            continue
        nav = page.get_by_role("navigation", name="Sections")
        nav.locator(f'a[href="{path}"]').click()
        expect(page).to_have_url(re.compile(re.escape(path) + "$"))
        expect(page.get_by_role("heading", level=1).first).to_be_visible()
        console.shot()


def _directive(csp: str, name: str) -> list[str]:
    for part in csp.split(";"):
        words = part.split()
        if words and words[0] == name:
            return words[1:]
    return []


def test_framing_is_allowed_to_bigcommerce_and_this_site_only(tab: Tab) -> None:
    headers = tab.open("/console/sign-in").headers
    assert _directive(headers["content-security-policy"], "frame-ancestors") == [
        "'self'",
        "https://*.bigcommerce.com",
        "https://*.mybigcommerce.com",
    ]
    assert "x-frame-options" not in headers  # it would override frame-ancestors


def test_the_console_works_inside_a_frame(tab: Tab, sandbox: SandboxServer) -> None:
    """Framed by a page of its own origin (the policy lets 'self' frame it, as it lets a store's
    control panel), the console signs in and shows its pages inside the frame."""
    page = tab.page
    page.route(
        f"{sandbox.base}/control-panel",
        lambda route: route.fulfill(
            content_type="text/html", body=FRAMING.format(src="/console/sign-in")
        ),
    )
    page.goto("/control-panel")
    frame = page.frame_locator("iframe[title='Sous console']")
    frame.get_by_label("API key").fill(sandbox.key)
    frame.get_by_role("button", name="Sign in").click()
    expect(frame.get_by_role("navigation", name="Sections")).to_be_visible()
    expect(frame.get_by_title("Workspace")).to_have_text("sandbox")
    tab.shot("framed")


def test_another_site_may_not_frame_the_console(tab: Tab, sandbox: SandboxServer) -> None:
    """``localhost`` is another origin than ``127.0.0.1``: the browser refuses the frame."""
    other = sandbox.base.replace("127.0.0.1", "localhost")
    page = tab.page
    page.route(
        f"{other}/control-panel",
        lambda route: route.fulfill(
            content_type="text/html", body=FRAMING.format(src=f"{sandbox.base}/console/sign-in")
        ),
    )
    tab.allow_error(r"frame-ancestors")  # Chromium may log the refusal
    page.goto(f"{other}/control-panel")  # "load" waits for the frame's own load too
    framed = page.locator("iframe[title='Sous console']").element_handle().content_frame()
    assert framed is not None
    assert not framed.url.startswith(sandbox.base), framed.url  # an error page instead
    expect(
        page.frame_locator("iframe[title='Sous console']").get_by_label("API key")
    ).to_have_count(0)
    tab.shot("refused-frame")


def test_the_api_reference_renders_offline(tab: Tab) -> None:
    tab.open("/docs")
    page = tab.page
    expect(page.locator("#swagger-ui .info .title")).to_contain_text("Sous")
    expect(page.locator('[data-path="/v1/runs"]').first).to_be_visible()
    tab.shot("rendered")
