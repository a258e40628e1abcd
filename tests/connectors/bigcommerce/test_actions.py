"""The actions against the simulator over HTTP: each writes once per (run, step), even when
run again or when the answer to its write was lost; errors keep their retryable/permanent
classes. Every request sent is checked against BigCommerce's OpenAPI documents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from pydantic import ValidationError

from connectors.bigcommerce.actions import (
    InventoryParams,
    ProductUpdateParams,
    VariantParams,
    adjust_inventory,
    update_product,
    update_variant,
)
from connectors.bigcommerce.actions_store import (
    STORE_ACTIONS,
    CustomerGroupParams,
    OrderNoteParams,
    OrderStatusParams,
    RequestParams,
    add_order_note,
    raw_request,
    set_customer_group,
    set_order_status,
)
from connectors.bigcommerce.errors import NotFound, ServerError
from connectors.bigcommerce.models import WriteLog
from engine.errors import PermanentError, RetryableError
from engine.run.steps import writes
from engine.store.models import StepRow
from tests.connectors.bigcommerce.harness import Live, Servers, caused, live_rig, servers_up
from tests.fakes import Recorder

pytestmark = pytest.mark.asyncio(loop_scope="module")

TO_PREORDER = """\
id: to-preorder
name: Sold out products go on pre-order
trigger: {type: bigcommerce.product.out_of_stock}
conditions:
  - {"==": [{"var": "product.inventory_tracking"}, "product"]}
actions:
  - id: hold
    use: bigcommerce.product.update
    with:
      product_id: "{{ product.id }}"
      availability: preorder
      preorder_message: "Back soon"
      custom_fields: {"Restock": "on order"}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers() -> AsyncIterator[Servers]:
    async with servers_up() as up:
        yield up


@pytest_asyncio.fixture(loop_scope="module")
async def live(servers: Servers, tmp_path: Path, recorder: Recorder) -> AsyncIterator[Live]:
    async with live_rig(servers, tmp_path, recorder) as rig:
        yield rig
        assert rig.transport.check_all() > 0  # every request matches BigCommerce's documents
        rig.check_payloads()  # every event's payload matches the model the catalog publishes


async def test_product_update_writes_once_per_step(live: Live) -> None:
    cat = live.product("Cat Eye Sunglasses")
    sale = next(c.id for c in live.sim_store.categories.values() if c.name == "Sale")
    lens = next(f.id for f in cat.custom_fields if f.name == "Lens")
    params = ProductUpdateParams(
        product_id=cat.id, availability="preorder", preorder_message="Back soon",
        custom_fields={"Lens": "Mirrored", "Badge": "Pre-order"}, add_categories=[sale],
    )  # fmt: skip
    ctx = live.context(step="hold")
    first = await update_product(ctx, params)
    again = await update_product(ctx, params)
    assert first.changed
    assert first.fields == [
        "availability",
        "categories",
        "custom_fields",
        "preorder_message",
    ]
    assert not again.changed
    assert again.fields == []
    assert len(live.writes("PUT", f"/v3/catalog/products/{cat.id}")) == 1
    assert cat.availability == "preorder"
    assert sale in cat.categories
    assert {f.name: (f.id, f.value) for f in cat.custom_fields}["Lens"] == (lens, "Mirrored")
    assert {f.name: f.value for f in cat.custom_fields}["Badge"] == "Pre-order"
    assert again.product["custom_fields"]["Badge"] == "Pre-order"
    record = live.engine.services.get(WriteLog).find(live.store_id, ("product",), cat.id)
    assert record is not None
    assert record.run_id == "run_test"
    assert record.idempotency_key == "run_test:hold"


async def test_a_write_whose_answer_was_lost_is_not_repeated(live: Live) -> None:
    cat = live.product("Cat Eye Sunglasses")
    params = ProductUpdateParams(product_id=cat.id, is_visible=False)
    ctx = live.context(step="hide")
    live.transport.fail_next("PUT", f"/catalog/products/{cat.id}")  # applied, answer lost
    with pytest.raises(ServerError) as lost:
        await update_product(ctx, params)
    assert isinstance(lost.value, RetryableError)
    retried = await update_product(ctx, params)  # what the runner's retry does
    assert not retried.changed
    assert cat.is_visible is False
    assert len(live.writes("PUT", f"/v3/catalog/products/{cat.id}")) == 1
    live.transport.fail_next("PUT", f"/catalog/products/{cat.id}", after_commit=False)  # never sent
    show = ProductUpdateParams(product_id=cat.id, is_visible=True)
    with pytest.raises(RetryableError):
        await update_product(live.context(step="show"), show)
    assert (await update_product(live.context(step="show"), show)).changed
    assert cat.is_visible


async def test_inventory_adjustments_apply_once(live: Live) -> None:
    scarf = live.product("Silk Scarf")
    start = scarf.inventory_level
    take = InventoryParams(product_id=scarf.id, mode="relative", quantity=-5, reason="damaged")
    first = await adjust_inventory(live.context(step="take"), take)
    again = await adjust_inventory(live.context(step="take"), take)
    assert (first.applied, first.previous, first.level) == (True, start, start - 5)
    assert not again.applied
    assert scarf.inventory_level == start - 5
    other = await adjust_inventory(live.context(step="take-more"), take)
    assert other.applied
    assert scarf.inventory_level == start - 10
    live.transport.fail_next("POST", "/inventory/adjustments/relative")  # applied, answer lost
    with pytest.raises(RetryableError):
        await adjust_inventory(live.context(step="lost"), take)
    retried = await adjust_inventory(live.context(step="lost"), take)
    assert not retried.applied
    assert scarf.inventory_level == start - 15
    assert len(live.writes("POST", "/v3/inventory/adjustments/relative")) == 3
    absolute = InventoryParams(product_id=scarf.id, quantity=7)
    assert (await adjust_inventory(live.context(step="set"), absolute)).applied
    assert not (await adjust_inventory(live.context(step="set"), absolute)).applied
    assert scarf.inventory_level == 7
    assert len(live.writes("PUT", "/v3/inventory/adjustments/absolute")) == 1


async def test_variant_update(live: Live) -> None:
    beanie = live.product("Merino Wool Beanie")
    navy = next(v for v in live.sim_store.option_variants(beanie.id) if v.sku == "HAT-BNE-NVY")
    params = VariantParams(
        product_id=beanie.id, variant_id=navy.id, purchasing_disabled=False, inventory_level=3
    )
    first = await update_variant(live.context(), params)
    again = await update_variant(live.context(), params)
    assert first.changed
    assert first.fields == ["inventory_level", "purchasing_disabled"]
    assert not again.changed
    assert navy.purchasing_disabled is False
    assert navy.inventory_level == 3
    assert len(live.writes("PUT", f"/v3/catalog/products/{beanie.id}/variants/{navy.id}")) == 1


async def test_order_note_is_appended_once_per_step(live: Live) -> None:
    order = next(o for o in live.sim_store.orders.values() if o.status_id == 11)
    note = OrderNoteParams(order_id=order.id, note="Backordered: ships in 2 weeks")
    first = await add_order_note(live.context(step="note"), note)
    again = await add_order_note(live.context(step="note"), note)
    assert first.added
    assert not again.added
    assert first.tag == again.tag
    assert order.staff_notes.count("Backordered") == 1
    assert order.staff_notes.endswith(first.tag)
    later = await add_order_note(live.context(run="run_other", step="note"), note)
    assert later.added
    assert order.staff_notes.count("Backordered") == 2
    assert len(live.writes("PUT", f"/v2/orders/{order.id}")) == 2


async def test_order_status_by_name_and_customer_group_by_name(live: Live) -> None:
    order = next(o for o in live.sim_store.orders.values() if o.status_id == 11)
    done = await set_order_status(
        live.context(), OrderStatusParams(order_id=order.id, status="awaiting shipment")
    )
    assert (done.changed, done.previous_status_id, done.status_id, done.status) == (
        True,
        11,
        9,
        "Awaiting Shipment",
    )
    assert not (
        await set_order_status(live.context(), OrderStatusParams(order_id=order.id, status_id=9))
    ).changed
    with pytest.raises(PermanentError, match=r"unknown order status 'Lost'.*Shipped"):
        await set_order_status(live.context(), OrderStatusParams(order_id=order.id, status="Lost"))
    with pytest.raises(ValidationError):
        OrderStatusParams(order_id=order.id, status="Shipped", status_id=2)
    customer = live.sim_store.customers[1]
    vip = await set_customer_group(live.context(), CustomerGroupParams(customer_id=1, group="VIP"))
    assert vip.changed
    assert customer.customer_group_id == vip.group_id != vip.previous_group_id
    assert not (
        await set_customer_group(live.context(), CustomerGroupParams(customer_id=1, group="vip"))
    ).changed
    assert len(live.writes("PUT", f"/v2/orders/{order.id}")) == 1
    assert len(live.writes("PUT", "/v2/customers/1")) == 1


async def test_raw_requests_are_guarded(live: Live) -> None:
    cat = live.product("Cat Eye Sunglasses")
    read = await raw_request(live.context(), RequestParams(path=f"/v3/catalog/products/{cat.id}"))
    assert read.status == 200
    assert read.body["data"]["name"] == "Cat Eye Sunglasses"
    body = {"is_featured": False}
    write = await raw_request(
        live.context(step="raw"),
        RequestParams(method="PUT", path=f"/v3/catalog/products/{cat.id}", body=body),
    )
    assert write.status == 200
    assert cat.is_featured is False
    assert live.engine.services.get(WriteLog).find(live.store_id, ("product",), cat.id) is not None
    for path in ("https://evil.example/v3/x", "//evil.example/v3/x", "/v3/../v2/x", "/v1/x",
                 "v3/catalog/products", "/v3/catalog/products?id=1", "/v3/a%2F..%2Fb"):  # fmt: skip
        with pytest.raises(ValidationError):
            RequestParams(path=path)
    with pytest.raises(ValidationError):
        RequestParams.model_validate({"method": "PATCH", "path": "/v3/catalog/products"})


async def test_a_raw_get_reads_and_other_methods_write_so_a_test_run_makes_only_the_get() -> None:
    [spec] = [a for a in STORE_ACTIONS if a.name == "bigcommerce.request"]
    assert writes(spec, RequestParams(path="/v3/catalog/products/1")) is False
    for method in ("POST", "PUT", "DELETE"):
        params = RequestParams.model_validate({"method": method, "path": "/v3/catalog/products"})
        assert writes(spec, params) is True, method


async def test_errors_keep_their_class(live: Live) -> None:
    with pytest.raises(NotFound) as missing:
        await update_product(
            live.context(), ProductUpdateParams(product_id=999_999, is_visible=True)
        )
    assert isinstance(missing.value, PermanentError)
    assert "404" in str(missing.value)
    with pytest.raises(PermanentError, match="not connected"):
        await update_product(
            live.context(store="nope"), ProductUpdateParams(product_id=1, is_visible=True)
        )
    with pytest.raises(ValidationError):
        ProductUpdateParams(product_id=1, colour="red")  # type: ignore[call-arg]


async def test_a_recipe_puts_a_sold_out_product_on_preorder(live: Live, tmp_path: Path) -> None:
    uid = live.load(tmp_path, TO_PREORDER)
    case = live.product("Bamboo Sunglasses Case")
    live.clock.advance(1)
    await live.set_stock(case.id, 0)
    await live.settle()
    [run] = live.runs(uid)
    assert run.status == "succeeded"
    with live.engine.db.session() as s:
        step = s.get(StepRow, (run.id, 0))
    assert step is not None
    assert step.output is not None
    assert step.output["changed"] is True
    assert case.availability == "preorder"
    assert case.preorder_message == "Back soon"
    own = [caused(e) for e in live.events("bigcommerce.product.updated") if caused(e)]
    assert [c.run_id for c in own if c] == [run.id]  # the write's webhook is the run's own
