"""backorder.assign / update / unassign against the simulator over HTTP."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from connectors.backorder.actions import (
    AssignParams,
    Target,
    UpdateParams,
    assign,
    unassign,
    update,
)
from engine.errors import PermanentError
from tests.connectors.backorder.conftest import Shop

CARD = "Leather Card Holder"  # tracked by product, out of stock in the seed


def params(shop: Shop, **extra: object) -> AssignParams:
    return AssignParams.model_validate({"product_id": shop.product_id(CARD), "limit": 50, **extra})


async def test_assign_puts_product_on_backorder_with_an_eta(shop: Shop) -> None:
    when = shop.clock.now().date() + timedelta(days=14)
    out = await assign(
        shop.ctx(),
        params(shop, message="Back soon: ships by %%DATE%%", back_in_stock_date=when.isoformat()),
    )
    assert out.created
    assert out.changed
    assert out.status == "active"
    assert (out.limit, out.limit_left, out.units_backordered) == (50, 50, 0)
    assert out.eta == when
    assert out.eta_source == "back_in_stock_date"
    assert out.message_rendered == f"Back soon: ships by {when:%B %d, %Y}"
    # one read and one write: the custom field rides on the product update
    assert [r.method for r in shop.requests()] == ["GET", "PUT"]
    product = await shop.product(shop.product_id(CARD))
    assert product["inventory_tracking"] == "none"
    assert product["availability"] == "preorder"
    assert product["preorder_message"] == "Back soon: ships by %%DATE%%"
    assert product["preorder_release_date"].startswith(when.isoformat())
    assert product["is_preorder_only"] is False
    assert {"name": "sous_backorder", "value": "on"} in [
        {k: f[k] for k in ("name", "value")} for f in product["custom_fields"]
    ]
    [assigned] = shop.sent("backorder.assigned")
    assert assigned["backorder"]["eta"] == when.isoformat()
    assert assigned["product"] == {"id": shop.product_id(CARD), "name": CARD, "sku": "ACC-CARD"}


async def test_assigning_twice_is_harmless(shop: Shop) -> None:
    first = await assign(shop.ctx(), params(shop, incoming_quantity=20))
    shop.forget_requests()
    again = await assign(shop.ctx(run="run_2"), params(shop, incoming_quantity=20))
    assert again.assignment_id == first.assignment_id
    assert not again.created
    assert not again.changed
    assert again.store_writes == 0
    assert [r.method for r in shop.requests()] == ["GET"]
    assert len(shop.sent("backorder.assigned")) == 1
    assert shop.sent("backorder.updated") == []
    # the same step retried counts as the step that created it (its event is deduplicated)
    retried = await assign(shop.ctx(), params(shop, incoming_quantity=20))
    assert retried.created
    assert len(shop.sent("backorder.assigned")) == 1


async def test_assigning_again_with_other_values_updates(shop: Shop) -> None:
    await assign(shop.ctx(), params(shop))
    out = await assign(shop.ctx(run="run_2"), params(shop, limit=80, message="Ships soon"))
    assert not out.created
    assert out.changes == ["backorder_limit", "message"]
    assert (await shop.product(shop.product_id(CARD)))["preorder_message"] == "Ships soon"
    [updated] = shop.sent("backorder.updated")
    assert updated["changes"] == ["backorder_limit", "message"]
    assert updated["backorder"]["limit"] == 80


async def test_unassign_restores_what_the_product_had(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    client = await shop.clients.client("default", shop.hash)
    await client.update_product(
        pid, {"availability_description": "Usually ships in 24 hours", "preorder_message": "old"}
    )
    before = await shop.product(pid)
    await assign(shop.ctx(), params(shop, incoming_quantity=5, lead_time_days=10))
    out = await unassign(shop.ctx(step="undo"), Target(product_id=pid))
    assert out.unassigned
    assert out.restored["inventory_tracking"] == "product"
    after = await shop.product(pid)
    for name in (
        "inventory_tracking",
        "availability",
        "preorder_message",
        "preorder_release_date",
        "is_preorder_only",
        "availability_description",
        "inventory_level",
        "custom_fields",
    ):
        assert after[name] == before[name], name
    [gone] = shop.sent("backorder.unassigned")
    assert gone["reason"] == "unassigned"
    assert gone["backorder"]["status"] == "ended"
    again = await unassign(shop.ctx(step="undo", run="run_2"), Target(product_id=pid))
    assert not again.unassigned


async def test_a_marker_the_product_already_had_is_put_back(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    client = await shop.clients.client("default", shop.hash)
    await client.update_product(
        pid, {"custom_fields": [{"name": "sous_backorder", "value": "never"}]}
    )
    await assign(shop.ctx(), params(shop))
    fields = {f["name"]: f["value"] for f in (await shop.product(pid))["custom_fields"]}
    assert fields["sous_backorder"] == "on"
    await unassign(shop.ctx(step="undo"), Target(product_id=pid))
    fields = {f["name"]: f["value"] for f in (await shop.product(pid))["custom_fields"]}
    assert fields["sous_backorder"] == "never"


async def test_update_changes_only_what_is_given(shop: Shop) -> None:
    when = shop.clock.now().date() + timedelta(days=20)
    await assign(
        shop.ctx(), params(shop, back_in_stock_date=when.isoformat(), message="By %%DATE%%")
    )
    out = await update(
        shop.ctx(step="more"),
        UpdateParams.model_validate({"product_id": shop.product_id(CARD), "limit": 10}),
    )
    assert out.changes == ["backorder_limit"]
    assert out.eta == when
    assert out.message == "By %%DATE%%"
    cleared = await update(
        shop.ctx(step="undated"),
        UpdateParams.model_validate(
            {"product_id": shop.product_id(CARD), "back_in_stock_date": None, "message": "Soon"}
        ),
    )
    assert cleared.eta is None
    assert cleared.eta_source == "none"
    product = await shop.product(shop.product_id(CARD))
    assert product["preorder_release_date"] is None
    assert product["preorder_message"] == "Soon"


async def test_update_of_an_unassigned_product_is_refused(shop: Shop) -> None:
    with pytest.raises(PermanentError, match="not found"):
        await update(shop.ctx(), UpdateParams(product_id=shop.product_id(CARD), limit=3))


async def test_a_dated_message_needs_a_date(shop: Shop) -> None:
    with pytest.raises(PermanentError, match="%%DATE%%"):
        await assign(shop.ctx(), params(shop, message="Ships by %%DATE%%"))
    past = (shop.clock.now().date() - timedelta(days=1)).isoformat()
    with pytest.raises(PermanentError, match="in the past"):
        await assign(shop.ctx(), params(shop, back_in_stock_date=past))
    assert shop.sent("backorder.assigned") == []


async def test_eta_from_incoming_stock_and_lead_time(shop: Shop) -> None:
    out = await assign(shop.ctx(), params(shop, incoming_quantity=30, lead_time_days=9))
    assert out.eta == shop.clock.now().date() + timedelta(days=9)
    assert out.eta_source == "incoming_stock"
    assert out.message_rendered == f"On backorder: ships by {out.eta:%B %d, %Y}"
    undated = await assign(
        shop.ctx(step="x"), AssignParams(product_id=shop.product_id("Retro Film Camera"), limit=5)
    )
    assert undated.eta is None
    assert undated.message == "On backorder: ships as soon as it is back in stock"


async def test_assigning_with_stock_left_arms_it(shop: Shop) -> None:
    pid = shop.product_id("Cat Eye Sunglasses")  # in stock
    before = await shop.product(pid)
    out = await assign(shop.ctx(), AssignParams(product_id=pid, limit=5))
    assert out.status == "armed"
    after = await shop.product(pid)
    assert (after["inventory_tracking"], after["availability"]) == (
        before["inventory_tracking"],
        before["availability"],
    )
    assert {f["name"]: f["value"] for f in after["custom_fields"]}["sous_backorder"] == "armed"


async def test_unknown_variant_is_refused(shop: Shop) -> None:
    with pytest.raises(PermanentError, match="not an option variant"):
        await assign(shop.ctx(), params(shop, variant_id=999999))


async def test_unknown_store_is_refused(shop: Shop) -> None:
    with pytest.raises(PermanentError, match="not connected"):
        await assign(shop.ctx(), params(shop, store="nosuchstore"))


def test_dates_render_in_params() -> None:
    parsed = AssignParams.model_validate(
        {"product_id": 1, "limit": 1, "back_in_stock_date": "2026-12-11"}
    )
    assert parsed.back_in_stock_date == date(2026, 12, 11)
    with pytest.raises(ValueError, match="limit"):
        AssignParams.model_validate({"product_id": 1, "limit": 0})
