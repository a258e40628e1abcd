"""A pack installed into two workspaces by two merchants, each seeing only their own; and the
backorder demand chart after a shopper orders a product on backorder."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.browser.harness import SandboxServer, landed
from tests.browser.tab import Tab, expect

PACK = "customers"


def _install(tab: Tab) -> None:
    page = tab.page
    tab.open("/console/packs")
    page.get_by_role("button", name=f"Install {PACK}").click()
    expect(page.get_by_role("status")).to_contain_text("install")
    installed = page.get_by_role("table", name="Installed packs")
    expect(installed.get_by_role("rowheader", name=re.compile(PACK))).to_be_visible()
    tab.shot("installed")


def test_a_pack_installs_into_two_workspaces_each_seeing_its_own(
    new_tab: Callable[[], Tab], sandbox: SandboxServer, other_key: str
) -> None:
    if not landed("/console/packs"):
        pytest.skip("the console has no packs page yet")
    ours, theirs = new_tab(), new_tab()
    ours.sign_in(sandbox.key)
    theirs.sign_in(other_key)
    expect(theirs.page.get_by_title("Workspace")).to_have_text("other")

    _install(ours)
    theirs.open("/console/packs")  # installed in workspace sandbox, not in theirs
    installed = theirs.page.get_by_role("table", name="Installed packs")
    expect(installed.get_by_role("rowheader", name=re.compile(PACK))).to_have_count(0)
    expect(theirs.page.get_by_role("button", name=f"Install {PACK}")).to_be_visible()

    _install(theirs)
    with sandbox.api() as api, sandbox.api(other_key) as other:
        for client in (api, other):
            listing = client.get("/v1/packs").json()["data"]
            assert any(p["name"] == PACK and p["installed"] for p in listing)


def test_the_backorder_demand_chart_shows_orders_taken_on_backorder(
    console: Tab, sandbox: SandboxServer
) -> None:
    if not landed("/console/backorders") or not landed("/console/runs"):
        pytest.skip("the console has no backorders page yet")
    page = console.page
    # At start the sandbox's shopper sold Cat Eye Sunglasses out and the example recipe put it
    # on backorder. Two more are ordered at zero stock: the ledger records them, then the
    # example recipe on backorder.ordered notes the order (its run shows up live).
    console.open_live("/console/runs?recipe=backordered-order-note")
    noted = page.get_by_role("row").filter(has_text="backordered-order-note")
    expect(noted).to_have_count(0)
    sandbox.buy("Cat Eye Sunglasses", 2)
    expect(noted.first).to_be_visible()
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Backorders").click()
    demand = page.get_by_role("region", name="Demand for backordered products")
    chart = demand.get_by_role("img", name="Units waiting per backordered product")
    expect(chart).to_be_visible()
    expect(chart.locator("rect")).not_to_have_count(0)  # a bar per product
    ranking = demand.get_by_role("table", name="Backordered products by units waiting")
    row = ranking.get_by_role("row").filter(has_text="Cat Eye Sunglasses")
    expect(row.get_by_role("cell").first).to_have_text("2")  # units waiting
    console.shot("demand")
