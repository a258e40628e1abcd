"""The gateway: auth, per-store rate limit on a ManualClock, injected latency and faults, and the
request log and counters other components' tests rely on."""

from __future__ import annotations

import asyncio

from engine.clock import ManualClock

RATE_HEADERS = (
    "X-Rate-Limit-Requests-Left",
    "X-Rate-Limit-Time-Reset-Ms",
    "X-Rate-Limit-Time-Window-Ms",
    "X-Rate-Limit-Requests-Quota",
)


async def test_missing_or_wrong_token_is_401_without_using_quota(harness):
    for token in ("", "wrong"):
        client = harness.api(token=token)
        for path in ("/v3/hooks", "/v3/catalog/products", "/v2/orders"):
            r = await client.get(path)
            assert r.status_code == 401, (token, path)
    r = await harness.api(token="wrong").get("/v3/hooks")
    assert r.json()["title"].startswith("Unauthorized")
    v2 = await harness.api(token="wrong").get("/v2/orders")
    assert v2.json()[0]["status"] == 401
    assert v2.headers["X-Rate-Limit-Requests-Left"] == "150"
    assert harness.sim.demo_store.counters.unauthorized == 8


async def test_unknown_store_is_404(harness):
    client = harness.control()
    r = await client.get("/stores/nosuch/v3/catalog/products", headers={"X-Auth-Token": "x"})
    assert r.status_code == 404


async def test_rate_limit_headers_on_every_response(api):
    for path in ("/v3/catalog/products", "/v2/orders/9999", "/v2/orders?status_id=13"):
        r = await api.get(path)
        assert all(h in r.headers for h in RATE_HEADERS), path
    assert r.headers["X-Rate-Limit-Requests-Quota"] == "150"
    assert r.headers["X-Rate-Limit-Time-Window-Ms"] == "30000"
    assert r.headers["X-Rate-Limit-Requests-Left"] == "147"


async def test_quota_exhausted_then_refreshed_by_moving_the_clock(make_harness, clock: ManualClock):
    harness = make_harness(quota=3, window_ms=10_000)
    api = harness.api()
    lefts = []
    for _ in range(3):
        r = await api.get("/v2/time")
        assert r.status_code == 200
        lefts.append(r.headers["X-Rate-Limit-Requests-Left"])
    assert lefts == ["2", "1", "0"]
    clock.advance(4)
    refused = await api.get("/v3/catalog/products")
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Time-Reset-Ms"] == "6000"
    assert refused.headers["X-Retry-After"] == "6"
    assert refused.headers["X-Rate-Limit-Requests-Left"] == "0"
    assert refused.json()["status"] == 429
    v2_refused = await api.get("/v2/orders")
    assert v2_refused.status_code == 429
    assert v2_refused.json()[0]["status"] == 429
    clock.advance(5.999)
    assert (await api.get("/v2/time")).status_code == 429
    clock.advance(0.001)
    again = await api.get("/v2/time")
    assert again.status_code == 200
    assert again.headers["X-Rate-Limit-Requests-Left"] == "2"
    counters = harness.sim.demo_store.counters
    assert (counters.requests, counters.rate_limited) == (7, 3)


async def test_quota_is_per_store(make_harness):
    harness = make_harness(quota=1)
    other = harness.sim.add_store()
    assert (await harness.api().get("/v2/time")).status_code == 200
    assert (await harness.api().get("/v2/time")).status_code == 429
    assert (await harness.api(other.store_hash).get("/v2/time")).status_code == 200


async def test_latency_waits_on_the_simulator_clock(make_harness, clock: ManualClock):
    harness = make_harness(faults={"latency_ms": 2000})
    task = asyncio.ensure_future(harness.api().get("/v2/time"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done()
    assert clock.sleepers == 1
    clock.advance(2)
    assert (await task).status_code == 200


async def test_injected_errors_before_the_handler_change_nothing(make_harness):
    harness = make_harness(faults={"error_rate": 1.0, "error_status": 503})
    r = await harness.api().put("/v3/catalog/products/111", json={"price": 1})
    assert r.status_code == 503
    assert r.json()["title"] == "Service Unavailable"
    assert "X-Rate-Limit-Requests-Left" in r.headers
    assert harness.sim.demo_store.products[111].price == 89
    v2 = await harness.api().get("/v2/orders")
    assert v2.json() == [{"status": 503, "message": "Service Unavailable"}]
    counters = harness.sim.demo_store.counters
    assert (counters.faults, counters.writes) == (2, 0)


async def test_errors_after_commit_apply_the_write(make_harness):
    harness = make_harness(
        faults={"error_rate": 1.0, "error_status": 500, "error_after_commit": True}
    )
    r = await harness.api().put("/v3/catalog/products/111", json={"price": 95})
    assert r.status_code == 500
    assert harness.sim.demo_store.products[111].price == 95
    [record] = harness.sim.demo_store.requests
    assert (record.status, record.handled_status, record.committed) == (500, 200, True)
    assert harness.sim.demo_store.counters.writes == 1


async def test_faults_are_seeded_and_settable_at_run_time(harness):
    control = harness.control()
    r = await control.put("/_sim/faults", json={"error_rate": 0.5})
    assert r.json()["error_rate"] == 0.5
    api = harness.api()
    statuses = [(await api.get("/v2/time")).status_code for _ in range(40)]
    assert 5 < statuses.count(503) < 35
    assert (await control.put("/_sim/faults", json={"error_rate": 2})).status_code == 422
    await control.put("/_sim/faults", json={"error_rate": 0})
    assert (await api.get("/v2/time")).status_code == 200
    assert (await control.get("/_sim/faults")).json()["error_rate"] == 0


async def test_request_log_and_counters(harness, clock: ManualClock):
    api, control = harness.api(), harness.control()
    await api.get("/v3/catalog/products", params={"id:in": "111"})
    clock.advance(1)
    await api.put("/v3/catalog/products/111", json={"price": 90})
    await api.put("/v3/catalog/products/111", json={"price": "nope"})
    log = (await control.get("/_sim/stores/sousdemo/requests")).json()["data"]
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", "/v3/catalog/products", 200),
        ("PUT", "/v3/catalog/products/111", 200),
        ("PUT", "/v3/catalog/products/111", 422),
    ]
    assert log[0]["query"] == "id%3Ain=111"
    assert log[1]["time"] == clock.now().isoformat().replace(".000000", "")
    puts = await control.get(
        "/_sim/stores/sousdemo/requests",
        params={"method": "put", "path": "/v3/catalog/products/111"},
    )
    assert [e["committed"] for e in puts.json()["data"]] == [True, False]
    counters = (await control.get("/_sim/stores/sousdemo/counters")).json()
    assert counters == {
        "requests": 3,
        "rate_limited": 0,
        "faults": 0,
        "writes": 1,
        "unauthorized": 0,
    }
    assert (await control.delete("/_sim/stores/sousdemo/requests")).status_code == 204
    assert (await control.get("/_sim/stores/sousdemo/counters")).json()["requests"] == 0


async def test_control_endpoints_need_no_token_and_use_no_quota(make_harness):
    harness = make_harness(quota=1)
    control = harness.control()
    for _ in range(3):
        assert (await control.get("/_sim/stores/sousdemo")).status_code == 200
    info = (await control.get("/_sim/stores/sousdemo")).json()
    assert info["access_token"] == "sim-demo-token"
    assert info["base_url"] == "http://sim.test/stores/sousdemo"
    assert (await harness.api().get("/v2/time")).status_code == 200


async def test_add_store_and_reset_rate_window(make_harness):
    harness = make_harness(quota=1)
    control = harness.control()
    made = await control.post("/_sim/stores", json={"name": "Second", "seed": True})
    assert made.status_code == 201
    store = made.json()
    api = harness.api(store["store_hash"])
    products = await api.get("/v3/catalog/products", params={"name": "Cat Eye Sunglasses"})
    assert len(products.json()["data"]) == 1
    assert (await api.get("/v2/time")).status_code == 429
    reset = await control.post(f"/_sim/stores/{store['store_hash']}/rate-limit/reset")
    assert reset.status_code == 204
    assert (await api.get("/v2/time")).status_code == 200
    listed = (await control.get("/_sim/stores")).json()
    assert {s["store_hash"] for s in listed} == {"sousdemo", store["store_hash"]}
    assert (await control.get("/_sim/stores/nosuch")).status_code == 404
