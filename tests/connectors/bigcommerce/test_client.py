"""BigCommerceClient over httpx.MockTransport: headers, errors, retries, pagination, batches."""

from __future__ import annotations

import asyncio
import itertools
import json

import httpx
import pytest
from sqlmodel import select

from connectors.bigcommerce.client import BigCommerceClient, RetryPolicy
from connectors.bigcommerce.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PlanLimitReached,
    RateLimited,
    RequestRejected,
    ServerError,
    TransportFailed,
    Unauthorized,
    ValidationFailed,
)
from engine.errors import PermanentError, Retry, RetryableError
from tests.connectors.bigcommerce.conftest import (
    FAST_RETRY,
    STORE,
    TOKEN,
    FakeStore,
    Script,
    body_json,
    drive,
    live_simulator,
    query,
    rl_headers,
    settle,
)

OK = httpx.Response(200, headers=rl_headers(100, 20_000), json={"data": {"id": 1}, "meta": {}})


def path_of(request: httpx.Request) -> str:
    return request.url.path.removeprefix(f"/stores/{STORE}")


# -- requests -------------------------------------------------------------------------------


async def test_sends_auth_accept_user_agent_and_json_only_with_a_body(make_client):
    script = Script(OK)
    client = make_client(script)
    await client.get_product(1)
    await client.update_product(1, {"price": 9.5})
    get, put = script.requests
    assert str(get.url) == f"https://api.bigcommerce.com/stores/{STORE}/v3/catalog/products/1"
    assert get.headers["X-Auth-Token"] == TOKEN
    assert get.headers["Accept"] == "application/json"
    assert get.headers["User-Agent"].startswith("Sous/")
    assert "Content-Type" not in get.headers
    assert put.headers["Content-Type"] == "application/json"
    assert body_json(put) == {"price": 9.5}
    assert TOKEN not in repr(client)


async def test_v2_paths_custom_base_url_and_user_agent(make_client):
    script = Script(httpx.Response(200, json={"id": 5, "name": "Demo"}))
    client = make_client(script, base_url="http://127.0.0.1:9/x/{store_hash}/", user_agent="T/1")
    assert await client.store_info() == {"id": 5, "name": "Demo"}
    assert str(script.requests[0].url) == f"http://127.0.0.1:9/x/{STORE}/v2/store"
    assert script.requests[0].headers["User-Agent"] == "T/1"


async def test_query_encoding_of_lists_and_booleans(make_client):
    script = Script(httpx.Response(200, json=[]))
    client = make_client(script)
    await client.request(
        "GET", "/orders", version="v2", params={"a:in": [1, 2], "b": True, "c": None}
    )
    assert query(script.requests[0]) == {"a:in": "1,2", "b": "true"}


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "base"),
    [
        (400, BadRequest, PermanentError),
        (401, Unauthorized, PermanentError),
        (403, Unauthorized, PermanentError),
        (404, NotFound, PermanentError),
        (405, RequestRejected, PermanentError),
        (409, Conflict, PermanentError),
        (413, BadRequest, PermanentError),
        (422, ValidationFailed, PermanentError),
        (501, RequestRejected, PermanentError),
        (507, PlanLimitReached, PermanentError),
    ],
)
async def test_error_statuses_map_to_typed_errors_without_retry(make_client, status, kind, base):
    script = Script(httpx.Response(status, json={"status": status, "title": "Nope"}))
    client = make_client(script)
    with pytest.raises(kind) as info:
        await client.update_product(3, {"name": "x"})
    assert isinstance(info.value, base)
    assert info.value.status == status
    assert info.value.title == "Nope"
    assert len(script.requests) == 1


async def test_v3_validation_errors_are_parsed(make_client):
    body = {"status": 422, "title": "Invalid", "type": "t", "errors": {"price": "must be >= 0"}}
    client = make_client(Script(httpx.Response(422, json=body)))
    with pytest.raises(ValidationFailed) as info:
        await client.update_product(3, {"price": -1})
    assert info.value.errors == {"price": "must be >= 0"}
    assert "price: must be >= 0" in str(info.value)
    assert "PUT /v3/catalog/products/3" in str(info.value)


async def test_v2_error_array_is_parsed(make_client):
    body = [{"status": 404, "message": "The requested resource was not found."}]
    client = make_client(Script(httpx.Response(404, json=body)))
    with pytest.raises(NotFound) as info:
        await client.get_order(999)
    assert info.value.title == "The requested resource was not found."
    assert info.value.errors["0"]["status"] == 404


async def test_auth_errors_say_what_to_check(make_client):
    client = make_client(Script(httpx.Response(401, json={"title": "Unauthorized"})))
    with pytest.raises(Unauthorized, match="check the store's access token and its OAuth scopes"):
        await client.get_order(1)
    client = make_client(Script(httpx.Response(403, json={"title": "Forbidden"})))
    with pytest.raises(Unauthorized, match="store_v2_products"):
        await client.get_product(1)


# -- 429 ------------------------------------------------------------------------------------


async def test_429_with_headers_waits_exactly_reset_ms_then_retries(make_client, clock):
    limited = httpx.Response(429, headers=rl_headers(0, 15_000), json={"status": 429})
    script = Script(limited, OK)
    client = make_client(script)
    task = asyncio.ensure_future(client.get_product(1))
    await settle()
    assert len(script.requests) == 1
    clock.advance(14.999)
    await settle()
    assert len(script.requests) == 1
    clock.advance(0.001)
    await settle()
    assert await task == {"id": 1}
    assert len(script.requests) == 2
    assert (client.stats.rate_limited, client.stats.retries, client.stats.requests) == (1, 1, 2)


async def test_429_without_headers_backs_off_progressively(make_client, clock):
    bare = httpx.Response(429, json={"status": 429})
    replies = [bare, bare, bare, OK]
    sent_at: list[float] = []

    def reply(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock.monotonic())
        return replies.pop(0)

    client = make_client(Script(reply))
    assert await drive(clock, client.get_product(1), step=0.25) == {"id": 1}
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert gaps == [1.0, 2.0, 4.0]


async def test_persistent_429_raises_rate_limited_with_defer(make_client, clock):
    limited = httpx.Response(429, headers=rl_headers(0, 2_000), json={"title": "Too many"})
    script = Script(limited)
    client = make_client(script, retry=RetryPolicy(max_rate_limited=2))
    with pytest.raises(RateLimited) as info:
        await drive(clock, client.get_product(1), step=0.5)
    assert isinstance(info.value, Retry)
    assert isinstance(info.value, RetryableError)
    assert info.value.defer == 2.0
    assert info.value.status == 429
    assert len(script.requests) == 3


async def test_concurrent_callers_pause_together_after_a_429(make_client, clock):
    store = FakeStore(clock, quota=150)
    store.used = 150  # another app spent the window
    client = make_client(store)
    calls = [client.request("GET", "/catalog/products/1") for _ in range(20)]
    await drive(clock, asyncio.gather(*calls), step=0.5)
    # Only the probing requests, sent before anything was known, met the 429.
    assert 1 <= store.statuses.count(429) <= 2
    assert store.statuses.count(200) == 20
    assert 30.0 <= clock.monotonic() < 31.0


# -- 5xx and network ------------------------------------------------------------------------


async def test_5xx_on_a_read_retries_with_the_read_delays_then_raises(make_client, clock):
    script = Script(httpx.Response(503, json={"title": "Maintenance"}))
    client = make_client(script)
    task = asyncio.ensure_future(client.get_product(1))
    await settle()
    for elapsed, expected in ((0.99, 1), (0.01, 2), (2.0, 3), (3.99, 3), (0.01, 4)):
        clock.advance(elapsed)
        await settle()
        assert len(script.requests) == expected
    with pytest.raises(ServerError, match="maintenance") as info:
        await task
    assert isinstance(info.value, RetryableError)
    assert client.stats.server_errors == 4


async def test_5xx_on_a_write_waits_longer_and_succeeds(make_client, clock):
    script = Script(httpx.Response(500, json={}), OK)
    client = make_client(script)
    task = asyncio.ensure_future(client.update_product(1, {"name": "n"}))
    await settle()
    clock.advance(4.99)
    await settle()
    assert len(script.requests) == 1
    clock.advance(0.01)
    await settle()
    assert await task == {"id": 1}


async def test_network_errors_are_retried_for_reads(make_client, clock):
    script = Script(httpx.ReadTimeout("slow"), httpx.ReadError("reset"), OK)
    client = make_client(script)
    assert await drive(clock, client.get_product(1), step=0.5) == {"id": 1}
    assert client.stats.network_errors == 2
    assert len(script.requests) == 3


async def test_write_timeouts_raise_retryable_without_resending(make_client, clock):
    script = Script(httpx.ReadTimeout("slow"), OK)
    client = make_client(script)
    with pytest.raises(TransportFailed, match="may or may not have been applied") as info:
        await client.update_product(1, {"name": "n"})
    assert isinstance(info.value, RetryableError)
    assert len(script.requests) == 1


async def test_writes_are_resent_when_the_connection_never_opened(make_client, clock):
    script = Script(httpx.ConnectError("refused"), OK)
    client = make_client(script)
    assert await drive(clock, client.update_product(1, {"x": 1}), step=0.5) == {"id": 1}
    assert len(script.requests) == 2


async def test_failed_and_cancelled_requests_release_the_budget(make_client, budget, clock):
    gate = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return OK

    client = make_client(hang)
    task = asyncio.ensure_future(client.get_product(1))
    await settle()
    assert budget.snapshot(STORE).in_flight == 1
    task.cancel()
    await settle()
    assert budget.snapshot(STORE).in_flight == 0
    client = make_client(Script(httpx.Response(404, json={})))
    with pytest.raises(NotFound):
        await client.get_product(2)
    assert budget.snapshot(STORE).in_flight == 0


async def test_clients_of_one_store_share_the_budget_and_record_stats(make_client, budget):
    a = make_client(Script(httpx.Response(200, headers=rl_headers(120, 9_000), json={})))
    b = make_client(Script(httpx.Response(200, headers=rl_headers(119, 8_000), json={})))
    await a.request("GET", "/hooks")
    await b.request("GET", "/hooks")
    snap = budget.snapshot(STORE)
    assert (snap.requests, snap.left, snap.quota) == (2, 119, 150)
    assert (b.stats.last_quota, b.stats.last_left) == (150, 119)


async def test_without_a_budget_each_client_has_its_own(clock):
    c = BigCommerceClient(STORE, TOKEN, clock=clock, transport=Script(OK).transport)
    async with c:
        await c.get_product(1)
    assert c._http.is_closed


# -- pagination -----------------------------------------------------------------------------


async def test_paginate_v3_follows_meta_pagination(make_client, clock):
    store = FakeStore(clock)
    store.products = {i: {"id": i} for i in range(1, 601)}
    client = make_client(store)
    ids = [p["id"] async for p in client.paginate_v3("/catalog/products", {"limit": 1000})]
    assert ids == list(range(1, 601))
    assert [(query(r)["page"], query(r)["limit"]) for r in store.requests] == [
        ("1", "250"),
        ("2", "250"),
        ("3", "250"),
    ]


async def test_paginate_v2_stops_on_a_short_page_or_204(make_client):
    pages = Script(
        httpx.Response(200, json=[{"id": 1}, {"id": 2}]),
        httpx.Response(200, json=[{"id": 3}]),
    )
    client = make_client(pages)
    got = [o["id"] async for o in client.paginate_v2("/orders", {"status_id": 11}, limit=2)]
    assert got == [1, 2, 3]
    assert [query(r)["page"] for r in pages.requests] == ["1", "2"]
    assert query(pages.requests[0])["status_id"] == "11"
    empty = Script(httpx.Response(200, json=[{"id": 1}, {"id": 2}]), httpx.Response(204))
    client = make_client(empty)
    assert [o["id"] async for o in client.paginate_v2("/orders", limit=2)] == [1, 2]
    assert len(empty.requests) == 2


# -- convenience methods --------------------------------------------------------------------


async def test_get_products_batches_ids_in_chunks_of_250(make_client, clock):
    store = FakeStore(clock)
    store.products = {i: {"id": i} for i in range(1, 601)}
    client = make_client(store)
    ids = [*range(1, 601), 5, 9999]
    products = await client.get_products(ids, include="variants")
    assert sorted(p["id"] for p in products) == list(range(1, 601))
    sizes = [len(query(r)["id:in"].split(",")) for r in store.requests]
    assert sizes == [250, 250, 101]
    assert {query(r)["include"] for r in store.requests} == {"variants"}


async def test_update_products_sends_batches_of_ten_and_collects_partial_failures(make_client):
    failure = {"status": 422, "title": "inventory failed", "errors": {"inventory_level": "< 0"}}
    partial = {"data": [{"id": 21}], "errors": failure, "meta": {}}

    def reply(request: httpx.Request) -> httpx.Response:
        items = body_json(request)
        if items[0]["id"] == 21:
            return httpx.Response(207, json=partial)
        return httpx.Response(200, json={"data": items, "meta": {}})

    script = Script(reply)
    client = make_client(script)
    result = await client.update_products([{"id": i, "price": 1} for i in range(1, 26)])
    assert [len(body_json(r)) for r in script.requests] == [10, 10, 5]
    assert len(result.data) == 21
    assert result.errors == [failure]
    with pytest.raises(ValueError, match="id"):
        await client.update_products([{"price": 1}])


async def test_inventory_adjustments(make_client):
    script = Script(httpx.Response(200, json={"transaction_id": "t-1"}))
    client = make_client(script)
    items = [{"location_id": 1, "variant_id": i, "quantity": 0} for i in range(2500)]
    assert await client.adjust_inventory_absolute(items, reason="sync") == ["t-1", "t-1"]
    assert await client.adjust_inventory_relative(items[:1]) == ["t-1"]
    first, second, third = script.requests
    assert (first.method, path_of(first)) == ("PUT", "/v3/inventory/adjustments/absolute")
    assert len(body_json(first)["items"]) == 2000
    assert body_json(first)["reason"] == "sync"
    assert len(body_json(second)["items"]) == 500
    assert (third.method, path_of(third)) == ("POST", "/v3/inventory/adjustments/relative")
    assert "reason" not in body_json(third)


async def test_orders_customers_hooks_and_variants_hit_the_documented_paths(make_client):
    def reply(request: httpx.Request) -> httpx.Response:
        path = path_of(request)
        if path.startswith("/v2/"):
            return httpx.Response(200, json=[] if request.method == "GET" else {"id": 1})
        if request.method == "GET":
            return httpx.Response(200, json={"data": [], "meta": {}})
        return httpx.Response(200, json={"data": {"id": 7}, "meta": {}})

    script = Script(reply)
    client = make_client(script)
    await client.get_order_products(5)
    await client.update_order(5, {"status_id": 2})
    await client.list_orders(min_date_modified="2026-01-01")
    await client.order_statuses()
    await client.get_customers(range(1, 61))
    await client.update_customer_v2(3, {"customer_group_id": 2})
    await client.customer_groups()
    await client.list_hooks(scope="store/order/*")
    assert await client.create_hook("store/order/*", "https://x/y", {"A": "b"}) == {"id": 7}
    await client.update_hook(7, {"is_active": False})
    await client.delete_hook(7)
    await client.get_variants(5)
    await client.update_variant(5, 6, {"inventory_level": 3})
    seen = [(r.method, path_of(r)) for r in script.requests]
    assert seen == [
        ("GET", "/v2/orders/5/products"),
        ("PUT", "/v2/orders/5"),
        ("GET", "/v2/orders"),
        ("GET", "/v2/order_statuses"),
        ("GET", "/v3/customers"),
        ("GET", "/v3/customers"),
        ("PUT", "/v2/customers/3"),
        ("GET", "/v2/customer_groups"),
        ("GET", "/v3/hooks"),
        ("POST", "/v3/hooks"),
        ("PUT", "/v3/hooks/7"),
        ("DELETE", "/v3/hooks/7"),
        ("GET", "/v3/catalog/products/5/variants"),
        ("PUT", "/v3/catalog/products/5/variants/6"),
    ]
    customers = [query(r)["id:in"] for r in script.requests if path_of(r) == "/v3/customers"]
    assert [len(c.split(",")) for c in customers] == [50, 10]
    hook = body_json(script.requests[9])
    assert hook == {
        "scope": "store/order/*",
        "destination": "https://x/y",
        "is_active": True,
        "headers": {"A": "b"},
    }
    assert query(script.requests[2])["min_date_modified"] == "2026-01-01"


# -- against the store simulator, over HTTP on loopback ---------------------------------------


async def test_simulator_errors_are_typed(clock, budget):
    async with live_simulator(clock, budget) as live:
        with pytest.raises(Unauthorized, match="access token"):
            await live.run(live.client("wrong-token").store_info())
        client = live.client()
        with pytest.raises(NotFound) as v3:
            await live.run(client.get_product(999_999))
        assert v3.value.title
        with pytest.raises(NotFound) as v2:
            await live.run(client.get_order(999_999))
        assert v2.value.title == "The requested resource was not found."
        with pytest.raises(ValidationFailed) as invalid:
            await live.run(client.request("POST", "/catalog/products", json={"name": "x"}))
        assert set(invalid.value.errors) >= {"type", "weight", "price"}


async def test_simulator_pagination_and_batches(clock, budget):
    async with live_simulator(clock, budget) as live:
        client = live.client()
        orders = await live.run(client.list_orders(limit=2))
        assert sorted(o["id"] for o in orders) == sorted(live.store.orders)
        # Full pages of 2, then a short page or a 204 past the end.
        assert live.calls("/v2/orders") == len(live.store.orders) // 2 + 1
        ids = live.add_products(12)
        result = await live.run(client.update_products([{"id": i, "price": 7} for i in ids]))
        assert len(result.data) == 12
        assert result.errors == []
        assert live.calls("/v3/catalog/products") == 2
        assert {live.store.products[i].price for i in ids} == {7}
        listed = [p async for p in client.paginate_v3("/catalog/products", {"limit": 5})]
        assert len(listed) == len(live.store.products)


async def test_simulator_5xx_is_retried_then_raised(clock, budget):
    async with live_simulator(clock, budget) as live:
        live.sim.faults.error_rate = 1.0
        live.sim.faults.error_status = 503
        client = live.client()
        with pytest.raises(ServerError, match="maintenance"):
            await live.run(client.get_product(111), step=0.5)
        assert live.store.counters.faults == 1 + len(FAST_RETRY.read_delays)


async def test_every_request_that_reaches_the_wire_is_counted_once(make_client, clock):
    """Usage counts what was sent: each attempt that left (retries and unanswered reads
    included), not a connection that never opened."""
    sent: list[str] = []
    script = Script(httpx.ConnectError("refused"), httpx.ReadError("reset"), OK)
    client = make_client(script, count=lambda: sent.append("request"))
    assert await drive(clock, client.get_product(1), step=0.5) == {"id": 1}
    assert len(script.requests) == 3
    assert sent == ["request", "request"]


async def test_a_store_client_counts_for_its_workspace_and_store_outside_any_step(clock):
    """A store's own client counts every request for the store's workspace and store, outside a
    run too (registering webhooks here; the normaliser's reads, catch-up polls and reports
    alike), for a recipe only inside one of that workspace's steps."""
    from connectors.bigcommerce.stores import BigCommerceStores
    from engine.store.db import Database
    from engine.store.usage import UsageRow, metering, usage_key
    from engine.store.vault import Cipher

    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        if request.method == "GET":
            return httpx.Response(200, json={"data": [], "meta": {}})
        made = json.loads(request.content) | {"id": len(sent), "is_active": True}
        return httpx.Response(200, json={"data": made})

    db = Database("sqlite://")
    db.create_all()
    stores = BigCommerceStores(db, Cipher("k" * 32), clock, transport=httpx.MockTransport(answer))
    hook = {"store_hash": "abc", "api_base_url": "https://api.example/stores/abc"}
    hook |= {"access_token": "t", "webhook_secret": "s", "store_id": "st_1"}
    other = usage_key("south", clock.now(), "sss", "rcp_2")
    with metering(db.usage, other):  # another workspace's step: not its recipe, nor its store
        await stores.register(workspace="north", **hook)
    await db.writer.write(lambda tx: None)
    with db.read_session() as session:
        rows = session.exec(select(UsageRow)).all()
    assert len(sent) > 1
    assert [(r.workspace_id, r.store, r.recipe, r.store_requests) for r in rows] == [
        ("north", "abc", "", len(sent))
    ]
    await stores.aclose()
