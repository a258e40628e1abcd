"""The events list follows the store live; an event's page says what each recipe decided."""

from __future__ import annotations

import re

import pytest

from tests.browser.harness import SandboxServer, landed
from tests.browser.tab import Tab, expect

SOLD_OUT = "bigcommerce.product.out_of_stock"


def test_a_sale_shows_up_live_and_its_event_names_each_recipes_decision(
    console: Tab, sandbox: SandboxServer
) -> None:
    if not landed("/console/events") or not landed("/console/events/evt_x"):
        pytest.skip("the console has no events page yet")
    with sandbox.api() as api:
        made = api.post(
            "/v1/recipes",
            json={
                "id": "never-for-the-events-page",
                "name": "Never fires (stock far below zero)",
                "trigger": {"type": SOLD_OUT},
                "conditions": [{"<": [{"var": "product.inventory_level"}, -1000]}],
                "actions": [{"use": "core.log", "with": {"message": "never"}}],
            },
        )
    assert made.status_code == 201, made.text
    page = console.page
    console.open_live("/console/events")
    sold_out = page.get_by_role("row").filter(has_text=SOLD_OUT)
    before = sold_out.first.get_by_role("link").inner_text() if sold_out.count() else None
    sandbox.buy("Limited Edition Print")  # every unit left
    newest = sold_out.first.get_by_role("link")
    if before is None:
        expect(newest).to_be_visible()
    else:
        expect(newest).not_to_have_text(before)  # a new sold-out event on top, without reload
    console.shot("live-event")
    newest.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Event")
    decisions = page.get_by_role("region", name="What each recipe decided")
    ours = decisions.get_by_role("row").filter(has_text="never-for-the-events-page")
    expect(ours).to_contain_text("not matched at conditions")
    expect(ours).to_contain_text("product.inventory_level < -1000 was false")
    backorder = decisions.get_by_role("row").filter(has_text="sold-out-to-backorder")
    expect(backorder.get_by_role("link", name=re.compile(r"^run_"))).to_be_visible()
    console.shot("decisions")
