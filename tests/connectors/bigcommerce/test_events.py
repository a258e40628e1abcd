"""Triggers, payload shaping and parameter models, without a store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from connectors.bigcommerce.actions import ProductUpdateParams, product_changes
from connectors.bigcommerce.connector import CONNECTOR
from connectors.bigcommerce.events import ProductFilter, ScopeFilter, StatusFilter
from connectors.bigcommerce.normalize import ROUTES
from connectors.bigcommerce.normalize_orders import read_order
from connectors.bigcommerce.payloads import (
    SAMPLE_PRODUCT,
    dedup_key,
    order_payload,
    product_payload,
)
from connectors.bigcommerce.stores import SCOPES
from engine.authoring.loader import load_file
from engine.clock import ManualClock
from engine.model.events import Event
from engine.registry import Registry
from sous.container import build_registry
from tests.connectors.bigcommerce.openapi_requests import check_request

TYPES = {t.type for t in CONNECTOR.triggers}


def event(payload: dict[str, Any], type_: str = "bigcommerce.product.out_of_stock") -> Event:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    return Event("evt_1", type_, payload, "default", "abc", "webhook", "k", now, now)


def test_the_catalog_lists_every_event_and_action() -> None:
    stock = {f"{kind}.{name}" for kind in ("product", "variant") for name in (
        "created", "updated", "deleted", "inventory_changed", "out_of_stock", "back_in_stock",
        "low_stock")}  # fmt: skip
    orders = {"order.created", "order.updated", "order.status_changed", "order.refunded"}
    others = {"customer.created", "customer.updated", "shipment.created", "webhook"}
    located = ("created", "updated", "inventory_changed", "out_of_stock", "back_in_stock")
    locations = {f"location.{name}" for name in (*located, "low_stock")}
    assert {f"bigcommerce.{t}" for t in stock | orders | others | locations} == TYPES
    writes = {
        "bigcommerce.product.update", "bigcommerce.inventory.adjust", "bigcommerce.variant.update",
        "bigcommerce.order.set_status", "bigcommerce.order.add_note",
        "bigcommerce.customer.set_group", "bigcommerce.request",
    }  # fmt: skip
    reads = {
        "bigcommerce.product.get", "bigcommerce.variant.get", "bigcommerce.order.get",
        "bigcommerce.customer.get", "bigcommerce.orders.list", "bigcommerce.products.list",
        "bigcommerce.orders.count",
    }  # fmt: skip
    assert {a.name for a in CONNECTOR.actions} == writes | reads
    assert all(bool(a.writes) == (a.name in writes) for a in CONNECTOR.actions)
    assert all(a.output for a in CONNECTOR.actions)
    assert "bigcommerce" in build_registry().connectors


@pytest.mark.parametrize("trigger", CONNECTOR.triggers, ids=lambda t: t.type)
def test_samples_match_their_payload_models(trigger: Any) -> None:
    assert trigger.payload is not None
    trigger.payload.model_validate(trigger.sample)
    schema = trigger.payload.model_json_schema()
    assert schema["type"] == "object"
    assert schema["properties"]


def test_every_registered_scope_is_normalised() -> None:
    assert set(SCOPES) <= set(ROUTES)


def test_product_payload_turns_custom_fields_into_a_mapping() -> None:
    raw = {"id": 1, "name": "Tote", "custom_fields": [{"id": 4, "name": "Lens", "value": "UV"}]}
    assert product_payload(raw)["custom_fields"] == {"Lens": "UV"}
    assert product_payload({"id": 2})["variants"] == []


def test_order_payload_has_numbers_iso_dates_and_lines() -> None:
    raw = {"id": 7, "total_inc_tax": "336.3200", "date_created": "Wed, 10 Jan 2018 21:05:30 +0000",
           "products": {"url": "x"}, "coupons": {"url": "y"}, "status": "Shipped"}  # fmt: skip
    order = order_payload(
        raw, [{"id": 1, "product_id": 3, "price_inc_tax": "10.5000", "quantity": 2}]
    )
    assert order["total_inc_tax"] == 336.32
    assert order["date_created"] == "2018-01-10T21:05:30+00:00"
    assert order["products"] == [{"id": 1, "product_id": 3, "price_inc_tax": 10.5, "quantity": 2}]
    assert "coupons" not in order
    assert order["status"] == "Shipped"


def test_product_filter() -> None:
    sample = event({"product": SAMPLE_PRODUCT})
    assert ProductFilter().model_validate({}) == ProductFilter()
    check = next(
        t for t in CONNECTOR.triggers if t.type == "bigcommerce.product.out_of_stock"
    ).filter
    assert check is not None
    assert check(ProductFilter(product_ids=[111]), sample) is None
    assert "not one of" in (check(ProductFilter(product_ids=[5]), sample) or "")
    assert check(ProductFilter(skus=["SUN-CATEYE"]), sample) is None
    assert check(ProductFilter(skus=["OTHER"]), sample) is not None


def test_status_filter_takes_names_or_ids() -> None:
    spec = next(t for t in CONNECTOR.triggers if t.type == "bigcommerce.order.status_changed")
    assert spec.filter is not None
    shipped = event({"previous_status_id": 11, "previous_status": "Awaiting Fulfillment",
                     "status_id": 2, "status": "Shipped"}, spec.type)  # fmt: skip
    assert spec.filter(StatusFilter(to=["shipped"]), shipped) is None
    assert spec.filter(StatusFilter(to=[2]), shipped) is None
    assert (
        spec.filter(StatusFilter.model_validate({"from": [11], "to": ["Shipped"]}), shipped) is None
    )
    assert spec.filter(StatusFilter(to=["Completed", 10]), shipped) is not None
    assert spec.filter(StatusFilter.model_validate({"from": ["Pending"]}), shipped) is not None


def test_scope_filter_of_raw_webhooks() -> None:
    spec = next(t for t in CONNECTOR.triggers if t.type == "bigcommerce.webhook")
    assert spec.filter is not None
    cart = event({"scope": "store/cart/abandoned"}, spec.type)
    assert spec.filter(ScopeFilter(scopes=["store/cart/*"]), cart) is None
    assert spec.filter(ScopeFilter(), cart) is None
    assert spec.filter(ScopeFilter(scopes=["store/order/*"]), cart) is not None


def test_a_recipe_on_a_bigcommerce_trigger_validates(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "id: r\nname: r\ntrigger: {type: bigcommerce.order.status_changed, with: {to: [Shipped]}}\n"
        "actions:\n  - use: bigcommerce.order.add_note\n    with: {order_id: 1, note: hi}\n"
    )
    assert load_file(path, Registry([CONNECTOR])).errors == []
    path.write_text(path.read_text().replace("to: [Shipped]", "colour: red"))
    assert load_file(path, Registry([CONNECTOR])).errors


def test_dedup_keys_fit_the_inbox() -> None:
    assert dedup_key("abc:product:1:created") == "abc:product:1:created"
    long = dedup_key("x" * 500)
    assert len(long) <= 200
    assert long != dedup_key("x" * 499)


def test_product_changes_only_what_differs() -> None:
    current = {"availability": "available", "is_visible": True, "categories": [18, 19],
               "custom_fields": [{"id": 4, "name": "Lens", "value": "UV"}],
               "preorder_release_date": "2026-12-24T00:00:00+00:00"}  # fmt: skip
    same = ProductUpdateParams(
        product_id=1, availability="available", custom_fields={"Lens": "UV"}, add_categories=[18],
        preorder_release_date=datetime(2026, 12, 24, tzinfo=UTC),
    )  # fmt: skip
    assert product_changes(current, same) == {}
    new = ProductUpdateParams(
        product_id=1, is_visible=False, custom_fields={"Lens": "Blue", "Fit": "M"},
        remove_categories=[19],
    )  # fmt: skip
    assert product_changes(current, new) == {
        "is_visible": False,
        "categories": [18],
        "custom_fields": [
            {"id": 4, "name": "Lens", "value": "Blue"},
            {"name": "Fit", "value": "M"},
        ],
    }
    with pytest.raises(ValueError, match="1 to 250"):
        ProductUpdateParams(product_id=1, custom_fields={"Lens": ""})


def test_the_request_check_can_fail() -> None:
    bad = httpx.Request(
        "PUT", "http://127.0.0.1/stores/abc/v3/catalog/products/5",
        json={"availability": "sold-out"}, headers={"X-Auth-Token": "t"},
    )  # fmt: skip
    with pytest.raises(AssertionError, match="products_catalog"):
        check_request(bad)
    with pytest.raises(AssertionError, match="no v3 document"):
        check_request(httpx.Request("GET", "http://127.0.0.1/stores/abc/v3/nowhere"))
    good = httpx.Request(
        "GET", "http://127.0.0.1/stores/abc/v2/order_statuses", headers={"X-Auth-Token": "t"}
    )
    check_request(good)


async def test_an_order_read_serves_the_deliveries_received_before_it() -> None:
    calls: list[int] = []

    class Client:
        async def get_order(self, oid: int) -> dict[str, Any]:
            calls.append(oid)
            await asyncio.sleep(0)
            return {"id": oid, "status_id": 11}

        async def get_order_products(self, oid: int) -> list[dict[str, Any]]:
            return [{"id": 1, "order_id": oid}]

    clock = ManualClock()
    store = SimpleNamespace(id="sto_1", client=Client())
    n: Any = SimpleNamespace(engine=SimpleNamespace(clock=clock), order_reads={}, count=lambda _: 0)

    def delivery(received: float) -> Any:
        at = ManualClock().now() + timedelta(seconds=received)
        return SimpleNamespace(store=store, event=SimpleNamespace(received_at=at))

    clock.advance(1)  # deliveries received at 0 s and 0.5 s; the first read starts at 1 s
    both = await asyncio.gather(read_order(n, delivery(0), 7), read_order(n, delivery(0.5), 7))
    read = ({"id": 7, "status_id": 11}, [{"id": 1, "order_id": 7}])
    assert calls == [7]
    assert list(both) == [read, read]
    await read_order(n, delivery(0.9), 7)  # received before the read began: served by it
    assert calls == [7]
    await read_order(n, delivery(1.0), 7)  # received when it began: it may predate the change
    assert calls == [7, 7]
