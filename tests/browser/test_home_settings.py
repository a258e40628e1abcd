"""The home page and the settings: what a merchant sees first, and their keys."""

from __future__ import annotations

import re

from tests.browser.harness import SandboxServer
from tests.browser.tab import Tab, expect


def test_home_shows_the_sandbox_recipes_and_its_store(console: Tab) -> None:
    page = console.page
    recipes = page.get_by_role("region", name="Recipes")
    # the sandbox's shopper sold out Cat Eye Sunglasses at start: the backorder recipe ran
    row = recipes.get_by_role("row").filter(has_text="backorder").first
    expect(row).to_be_visible()
    expect(row.get_by_role("cell").nth(1)).to_contain_text("UTC")  # when it last ran
    stores = page.get_by_role("region", name="Stores")
    expect(stores.get_by_role("row").filter(has_text="sousdemo")).to_contain_text("ok")
    console.shot("home")


def test_an_admin_makes_a_read_key_whose_session_ends_when_it_is_revoked(
    console: Tab, new_tab, sandbox: SandboxServer
) -> None:
    page = console.page
    console.open("/console/settings")
    keys = page.get_by_role("region", name="API keys")
    keys.get_by_label("Name", exact=True).fill("Read-only browser test")
    keys.get_by_role("radio", name="read").check()
    keys.get_by_role("button", name="Create key").click()
    created = page.get_by_role("status").filter(has_text="shown only this once")
    expect(created).to_be_visible()
    key = page.get_by_label("The new key").input_value()
    assert key.startswith("sous_")
    console.shot("key-created")

    reader: Tab = new_tab()  # someone else, signing in with the new key
    reader.sign_in(key)
    reader.open("/console/settings")
    expect(reader.page.get_by_text("This session may look but not change")).to_be_visible()
    expect(reader.page.get_by_role("button", name="Create key")).to_have_count(0)

    console.open("/console/settings")
    page.get_by_role("button", name=re.compile(r"^Revoke key Read-only browser test")).click()
    row = page.get_by_role("row").filter(has_text="Read-only browser test")
    expect(row).to_contain_text("revoked")
    console.shot("key-revoked")

    reader.page.reload()  # the revoked key's session has ended
    expect(reader.page).to_have_url(re.compile(r"/console/sign-in\?next=/console/settings$"))
    reader.shot("signed-out")
