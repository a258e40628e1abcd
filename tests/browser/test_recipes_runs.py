"""A recipe tried on an event without running it (the condition that fails is named), and a
run held by flood protection released from its page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.harness import SandboxServer, landed
from tests.browser.tab import Tab, expect

NEVER = {"<": [{"var": "product.inventory_level"}, -1000]}
"""A condition no product meets: stock below minus a thousand."""


def _recipe(sandbox: SandboxServer, document: dict[str, Any]) -> None:
    with sandbox.api() as api:
        answer = api.post("/v1/recipes", json=document)
    assert answer.status_code == 201, answer.text


def test_a_dry_run_names_the_condition_that_fails(console: Tab, sandbox: SandboxServer) -> None:
    if not landed("/console/recipes/any"):
        pytest.skip("the console has no recipe page yet")
    _recipe(
        sandbox,
        {
            "id": "oversold-alert",
            "name": "Tell staff when stock goes far below zero",
            "trigger": {"type": "bigcommerce.product.out_of_stock"},
            "conditions": [{"==": [{"var": "product.is_visible"}, True]}, NEVER],
            "actions": [{"use": "core.log", "with": {"message": "{{ product.name }} oversold"}}],
        },
    )
    page = console.page
    console.open("/console/recipes")
    page.get_by_role("link", name=re.compile("far below zero|oversold-alert")).first.click()
    expect(page).to_have_url(re.compile(r"/console/recipes/oversold-alert$"))
    page.get_by_role("button", name=re.compile(r"dry run|test|try", re.IGNORECASE)).first.click()
    expect(page).to_have_url(re.compile(r"/console/recipes/oversold-alert/test"))
    verdict = page.get_by_text(re.compile(r"would not fire", re.IGNORECASE)).first
    expect(verdict).to_be_visible()
    # the second condition is named, with what it saw; the first (is_visible) held
    named = page.get_by_text("product.inventory_level < -1000 was false").first
    expect(named).to_be_visible()
    expect(page.get_by_text(re.compile(r"condition #2")).first).to_be_visible()
    console.shot("dry-run")


def test_a_flooded_run_is_held_then_released_from_its_page(
    console: Tab, sandbox: SandboxServer
) -> None:
    if not landed("/console/runs") or not landed("/console/runs/run_x"):
        pytest.skip("the console has no runs page yet")
    _recipe(
        sandbox,
        {
            "id": "one-an-hour",
            "name": "At most one run an hour",
            "trigger": {"type": "custom.browser_test"},
            "flood": {"max_runs": 1, "per": "1h"},
            "actions": [{"use": "core.log", "with": {"message": "note {{ note }}"}}],
        },
    )
    with sandbox.api() as api:
        for note in ("first", "second"):  # the second is beyond the flood limit: held
            sent = api.post(
                "/v1/events", json={"type": "custom.browser_test", "payload": {"note": note}}
            )
            assert sent.status_code in (200, 201, 202), sent.text
    page = console.page
    console.open("/console/runs?status=held&recipe=one-an-hour")
    held = page.get_by_role("row").filter(has_text="one-an-hour")
    expect(held).to_have_count(1)
    expect(held).to_contain_text("flood")
    console.shot("held")
    held.get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("held")
    run_id = page.get_by_role("heading", level=1).locator("code").inner_text()
    page.get_by_role("button", name="Release").click()
    expect(page.get_by_role("status")).to_contain_text("released")
    console.open_live("/console/runs?recipe=one-an-hour")  # a live list: it shows the run finish
    released = page.get_by_role("row").filter(has_text=run_id)
    expect(released).to_contain_text("succeeded")
    expect(page.get_by_role("row").filter(has_text="succeeded")).to_have_count(2)
    console.shot("released")
