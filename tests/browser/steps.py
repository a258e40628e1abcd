"""Steps several journeys share, taken through the pages as a merchant would."""

from __future__ import annotations

import re

from tests.browser.harness import landed
from tests.browser.tab import Tab, expect


def make_from_gallery(tab: Tab, template: str, recipe_id: str) -> None:
    """Open the gallery, pick ``template`` (its name), preview it, save it as ``recipe_id``."""
    page = tab.page
    tab.open("/console/templates")
    page.get_by_role("link", name=template, exact=True).first.click()
    expect(page.get_by_role("heading", name=template, level=1)).to_be_visible()
    page.get_by_label("Recipe id").fill(recipe_id)
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("region", name="Preview")).to_contain_text("would")
    tab.shot("preview")
    page.get_by_role("button", name="Save recipe").click()
    expect(page).to_have_url(re.compile(f"/console/recipes/{re.escape(recipe_id)}$"))
    if landed(f"/console/recipes/{recipe_id}"):
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        expect(page.get_by_text(recipe_id).first).to_be_visible()
    tab.shot("saved")
