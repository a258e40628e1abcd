"""From the template gallery to a recipe, and its run showing up live when the simulated
shopper sells a product out; then the run's trace."""

from __future__ import annotations

import re

import pytest

from tests.browser.harness import SandboxServer, landed
from tests.browser.steps import make_from_gallery
from tests.browser.tab import Tab, expect

HIDE = "Sold out → hide the product"
"""A catalog template whose inputs all have defaults: it fires on any visible product."""


def test_a_template_from_the_gallery_becomes_a_recipe(console: Tab, sandbox: SandboxServer) -> None:
    make_from_gallery(console, HIDE, "hide-sold-out")
    with sandbox.api() as api:
        made = api.get("/v1/recipes/hide-sold-out")
    assert made.status_code == 200, made.text
    assert made.json()["trigger_type"] == "bigcommerce.product.out_of_stock"


def test_its_run_appears_live_on_the_runs_page_and_opens_its_trace(
    console: Tab, sandbox: SandboxServer
) -> None:
    if not landed("/console/runs") or not landed("/console/runs/run_x"):
        pytest.skip("the console has no runs page yet")
    page = console.page
    make_from_gallery(console, HIDE, "hide-sold-out-live")
    console.open_live("/console/runs")
    runs = page.get_by_role("row").filter(has_text="hide-sold-out-live")
    expect(runs).to_have_count(0)
    sandbox.buy("Bamboo Sunglasses Case")  # every unit left: the store sends out_of_stock
    expect(runs.first).to_be_visible()  # no reload: the page follows the live stream
    expect(runs.first).to_contain_text("succeeded")
    console.shot("live-run")
    runs.first.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(r"/console/runs/run_\w+"))
    expect(page.get_by_text("bigcommerce.product.update").first).to_be_visible()
    console.shot("trace")
