"""The data steps against the simulator over HTTP: one resource by id (found or not), one
bounded page of a filtered list with the way to the next, a count by status. Every request is
checked against BigCommerce's OpenAPI documents, and none of them writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from connectors.bigcommerce.data_steps import (
    CustomerGetParams,
    OrderGetParams,
    OrdersCountParams,
    OrdersListParams,
    ProductGetParams,
    ProductsListParams,
    VariantGetParams,
    count_orders,
    get_customer,
    get_order,
    get_product,
    get_variant,
    list_orders,
    list_products,
)
from tests.connectors.bigcommerce.harness import Live, Servers, live_rig, servers_up
from tests.fakes import Recorder

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers() -> AsyncIterator[Servers]:
    async with servers_up() as up:
        yield up


@pytest_asyncio.fixture(loop_scope="module")
async def live(servers: Servers, tmp_path: Path, recorder: Recorder) -> AsyncIterator[Live]:
    async with live_rig(servers, tmp_path, recorder) as rig:
        before = writes(rig)  # setting the store up registers its webhooks
        yield rig
        assert rig.transport.check_all() > 0  # every request matches BigCommerce's documents
        assert writes(rig) == before  # a data step only reads


def writes(rig: Live) -> int:
    return sum(1 for r in rig.sim_store.requests if r.method != "GET")


async def test_one_resource_by_id_found_or_not(live: Live) -> None:
    cat = live.product("Cat Eye Sunglasses")
    got = await get_product(live.context(), ProductGetParams(product_id=cat.id))
    assert got.found and got.product is not None
    assert (got.product.id, got.product.name, got.product.sku) == (cat.id, cat.name, cat.sku)
    missing = await get_product(live.context(), ProductGetParams(product_id=987_654))
    assert (missing.found, missing.product) == (False, None)
    variant = next(iter(live.sim_store.variants.values()))
    found = await get_variant(
        live.context(), VariantGetParams(product_id=variant.product_id, variant_id=variant.id)
    )
    assert found.variant is not None and found.variant.sku == variant.sku
    order = next(iter(live.sim_store.orders.values()))
    read = await get_order(live.context(), OrderGetParams(order_id=order.id))
    assert read.order is not None and read.order.id == order.id
    assert len(read.lines) == len(order.lines) > 0
    customer = next(iter(live.sim_store.customers.values()))
    who = await get_customer(live.context(), CustomerGetParams(customer_id=customer.id))
    assert who.customer is not None and who.customer.email == customer.email
    nobody = await get_customer(live.context(), CustomerGetParams(customer_id=987_654))
    assert nobody.found is False


async def test_lists_are_one_bounded_page_with_the_way_to_the_next(live: Live) -> None:
    orders = sorted(live.sim_store.orders.values(), key=lambda o: o.id)
    assert len(orders) >= 3
    first = await list_orders(live.context(), OrdersListParams(limit=2, sort="id"))
    assert [o.id for o in first.orders] == [o.id for o in orders[:2]]
    assert (first.count, first.more, first.next_page) == (2, True, 2)
    assert first.total_inc_tax == round(sum(o.total_inc_tax or 0 for o in first.orders), 2) > 0
    rest = await list_orders(live.context(), OrdersListParams(limit=250, page=1, sort="id"))
    assert (rest.count, rest.more) == (len(orders), False)
    mine = orders[0].customer_id
    theirs = await list_orders(live.context(), OrdersListParams(customer_id=mine))
    assert {o.customer_id for o in theirs.orders} == {mine}
    products = await list_products(live.context(), ProductsListParams(limit=1))
    assert (products.count, products.more, products.next_page) == (1, True, 2)
    assert products.total == len(live.sim_store.products)
    cat = live.product("Cat Eye Sunglasses")
    by_sku = await list_products(live.context(), ProductsListParams(sku=cat.sku))
    assert [p.id for p in by_sku.products] == [cat.id]


async def test_orders_are_counted_in_all_and_by_status(live: Live) -> None:
    counted = await count_orders(live.context(), OrdersCountParams())
    assert counted.count == len(live.sim_store.orders)
    assert sum(counted.by_status.values()) == counted.count
    status = next(iter(live.sim_store.orders.values())).status_id
    some = await count_orders(live.context(), OrdersCountParams(status_id=status))
    assert some.count == sum(1 for o in live.sim_store.orders.values() if o.status_id == status)
