"""Signing in and out in a real browser, by mouse and by keyboard."""

from __future__ import annotations

import re

from tests.browser.harness import SandboxServer
from tests.browser.tab import Page, Tab, expect


def test_a_merchant_signs_in_with_the_sandbox_key_and_out_again(
    tab: Tab, sandbox: SandboxServer
) -> None:
    tab.sign_in(sandbox.key)
    page = tab.page
    expect(page.get_by_role("heading", name="Home", level=1)).to_be_visible()
    expect(page.get_by_title("Workspace")).to_have_text("sandbox")
    expect(page.get_by_role("navigation", name="Sections")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    tab.shot()
    tab.open("/console/")  # signed out: the console sends the visitor to sign in
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=/console/$"))


def test_a_wrong_key_is_refused_with_the_reason(tab: Tab) -> None:
    tab.allow_error(r"status of 401")  # the browser logs the refused form's 401 answer
    tab.open("/console/sign-in")
    page = tab.page
    page.get_by_label("API key").fill("sous_not-a-key-of-this-sandbox")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    tab.shot("refused")


def test_a_page_asked_for_signed_out_opens_after_signing_in(
    tab: Tab, sandbox: SandboxServer
) -> None:
    tab.open("/console/?from=bookmark")
    page = tab.page
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    page.get_by_label("API key").fill(sandbox.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/\?from=bookmark$"))
    tab.shot()


def _tab_to(page: Page, name: str, target: str, presses: int = 20) -> None:
    """Press Tab until ``target`` (a selector) has the focus; fail after ``presses``."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.locator(target).evaluate("(element) => element === document.activeElement"):
            return
    raise AssertionError(f"Tab did not reach {name} in {presses} presses")


def test_the_keyboard_reaches_the_key_field_and_the_button_and_signs_in(
    tab: Tab, sandbox: SandboxServer
) -> None:
    tab.open("/console/sign-in")
    page = tab.page
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    _tab_to(page, "the API key field", "input[name=key]")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(sandbox.key)
    _tab_to(page, "the Sign in button", "button[type=submit]")
    expect(page.get_by_role("button", name="Sign in")).to_be_focused()
    tab.shot("button-focused")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/$"))
    tab.shot()
