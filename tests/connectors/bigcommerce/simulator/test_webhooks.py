"""Outgoing webhooks: matching, envelope, custom headers, signature, retries on the published
schedule (scaled, on a ManualClock), deactivation, and the delivery log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

import httpx

from connectors.bigcommerce.simulator.config import RETRY_SCHEDULE_S
from engine.clock import ManualClock, SystemClock


class Sink:
    """An httpx handler for the deliverer: records requests, answers ``statuses`` in turn."""

    def __init__(self, *statuses: int | Exception) -> None:
        self.statuses = list(statuses) or [200]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(status, Exception):
            raise status
        return httpx.Response(status)

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    @property
    def scopes(self) -> list[str]:
        return [p["scope"] for p in self.payloads]


async def hook(
    api, scope: str, destination: str = "https://receiver.example/bc", **extra
) -> dict[str, Any]:
    r = await api.post("/v3/hooks", json={"scope": scope, "destination": destination, **extra})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def buy(
    control, product_id: int, quantity: int = 1, variant_id: int | None = None
) -> dict[str, Any]:
    line = {"product_id": product_id, "quantity": quantity, "variant_id": variant_id}
    r = await control.post("/_sim/stores/sousdemo/orders", json={"lines": [line]})
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()["order"]
    return order


async def test_delivery_to_a_real_receiver_with_custom_headers(harness, receiver):
    api, control = harness.api(), harness.control()
    headers = {"X-Api-Key": "s3cret", "Authorization": "Basic dXNlcjpwYXNz"}
    await hook(api, "store/order/*", receiver.url, headers=headers)
    order = await buy(control, 111)
    await harness.sim.deliveries.drain()
    scopes = [body["scope"] for _, body in receiver.received]
    assert scopes == ["store/order/created", "store/order/statusUpdated"]
    sent_headers, created = receiver.received[0]
    assert sent_headers["x-api-key"] == "s3cret"
    assert sent_headers["authorization"] == "Basic dXNlcjpwYXNz"
    assert sent_headers["content-type"] == "application/json"
    store = harness.sim.demo_store
    assert created["data"] == {"type": "order", "id": order["id"]}
    assert created["store_id"] == str(store.store_id)
    assert created["producer"] == "stores/sousdemo"
    assert re.fullmatch(r"[0-9a-f]{40}", created["hash"])
    assert created["created_at"] == int(harness.sim.clock.now().timestamp())
    assert set(created) == {"scope", "store_id", "data", "hash", "created_at", "producer"}
    status = receiver.received[1][1]["data"]["status"]
    assert status == {"previous_status_id": 0, "new_status_id": 11}
    assert receiver.received[0][1]["hash"] != receiver.received[1][1]["hash"]
    for _, body in receiver.received:  # the documented hash: SHA-1 of the JSON-encoded data
        encoded = json.dumps(body["data"], separators=(",", ":")).encode()
        assert body["hash"] == hashlib.sha1(encoded).hexdigest()


async def test_two_sales_of_one_unit_in_one_second_send_the_same_body(make_harness):
    sink = Sink()
    harness = make_harness(webhook_transport=httpx.MockTransport(sink))
    await hook(harness.api(), "store/product/inventory/order/updated")
    await buy(harness.control(), 111)
    await buy(harness.control(), 111)  # the clock has not moved
    await harness.sim.deliveries.drain()
    first, second = sink.requests
    assert first.content == second.content
    assert json.loads(first.content)["data"]["inventory"]["value"] == -1
    assert first.headers["webhook-id"] != second.headers["webhook-id"]


async def test_signature_headers_verify_with_the_client_secret(make_harness):
    sink = Sink()
    harness = make_harness(webhook_transport=httpx.MockTransport(sink))
    await hook(harness.api(), "store/order/created")
    await buy(harness.control(), 113)
    await harness.sim.deliveries.drain()
    [request] = sink.requests
    msg_id, stamp = request.headers["webhook-id"], request.headers["webhook-timestamp"]
    secret = harness.sim.demo_store.client_secret.encode()
    digest = hmac.new(secret, f"{msg_id}.{stamp}.".encode() + request.content, hashlib.sha256)
    assert (
        request.headers["webhook-signature"] == "v1," + base64.b64encode(digest.digest()).decode()
    )


async def test_wildcards_exact_scopes_and_inactive_hooks(make_harness):
    sink = Sink()
    harness = make_harness(webhook_transport=httpx.MockTransport(sink), webhook_signing=False)
    api, control = harness.api(), harness.control()
    wildcard = await hook(api, "store/product/*", "https://a.example/x")
    await hook(api, "store/sku/inventory/order/updated", "https://b.example/x")
    await hook(api, "store/customer/created", "https://c.example/x", is_active=False)
    aviator_gold = harness.sim.demo_store.option_variants(112)[0].id
    await buy(control, 112, 2, aviator_gold)
    await buy(control, 111)
    await api.post(
        "/v3/customers", json=[{"email": "n@example.com", "first_name": "N", "last_name": "M"}]
    )
    await harness.sim.deliveries.drain()
    by_host: dict[str | None, list[str]] = {}
    for request in sink.requests:
        by_host.setdefault(request.url.host, []).append(json.loads(request.content)["scope"])
    assert by_host == {
        "b.example": ["store/sku/inventory/order/updated"],
        "a.example": [
            "store/product/updated",
            "store/product/inventory/order/updated",
            "store/product/updated",
        ],
    }
    assert "webhook-signature" not in sink.requests[0].headers
    sku_event = next(p for p in sink.payloads if p["scope"].startswith("store/sku"))
    assert sku_event["data"]["inventory"] == {
        "product_id": 112,
        "method": "relative",
        "value": -2,
        "variant_id": aviator_gold,
    }
    await api.put(f"/v3/hooks/{wildcard['id']}", json={"is_active": False})
    sink.requests.clear()
    await api.put("/v3/catalog/products/113", json={"price": 30})
    await harness.sim.deliveries.drain()
    assert sink.requests == []


async def settle_then_advance(harness, clock: ManualClock, seconds: float) -> None:
    await harness.sim.deliveries.settle()
    clock.advance(seconds)
    await harness.sim.deliveries.settle()


async def test_retries_follow_the_scaled_schedule_then_the_hook_is_deactivated(
    make_harness, clock: ManualClock
):
    sink = Sink(500)
    scale, early = 2**-6, 2**-10  # binary fractions: the clock arithmetic stays exact
    harness = make_harness(webhook_transport=httpx.MockTransport(sink), webhook_time_scale=scale)
    api = harness.api()
    made = await hook(api, "store/product/updated")
    await api.put("/v3/catalog/products/113", json={"price": 30})
    deliveries = harness.sim.deliveries
    await deliveries.settle()
    assert len(sink.requests) == 1
    start = clock.monotonic()
    for attempt, delay in enumerate(RETRY_SCHEDULE_S, start=2):
        await settle_then_advance(harness, clock, delay * scale - early)
        assert len(sink.requests) == attempt - 1, f"attempt {attempt} came early"
        await settle_then_advance(harness, clock, early)
        assert len(sink.requests) == attempt
    assert clock.monotonic() - start == sum(RETRY_SCHEDULE_S) * scale
    await deliveries.drain()
    assert len({r.content for r in sink.requests}) == 1  # the same payload, hash and all
    assert [r.attempt for r in deliveries.log] == list(range(1, 13))
    assert not any(r.ok for r in deliveries.log)
    got = (await api.get(f"/v3/hooks/{made['id']}")).json()["data"]
    assert got["is_active"] is False
    admin = (await api.get("/v3/hooks/admin")).json()["data"]["hooks_list"]
    assert admin[0]["status"] == "deactivated"
    # re-activated by the documented PUT, it fires again
    sink.statuses = [200]
    await api.put(f"/v3/hooks/{made['id']}", json={"is_active": True})
    await api.put("/v3/catalog/products/113", json={"price": 31})
    await deliveries.drain()
    assert deliveries.log[-1].ok
    assert len(sink.requests) == 13


async def test_a_retry_that_succeeds_delivers_the_same_event_once_more(
    make_harness, clock: ManualClock
):
    sink = Sink(503, httpx.ConnectTimeout("slow"), 204)
    harness = make_harness(webhook_transport=httpx.MockTransport(sink))
    await hook(harness.api(), "store/product/updated")
    await harness.api().put("/v3/catalog/products/113", json={"price": 30})
    await settle_then_advance(harness, clock, 60)
    await settle_then_advance(harness, clock, 180)
    await harness.sim.deliveries.drain()
    log = harness.sim.deliveries.log
    assert [(r.attempt, r.ok, r.status_code) for r in log] == [
        (1, False, 503),
        (2, False, None),
        (3, True, 204),
    ]
    assert log[1].error.startswith("ConnectTimeout")
    assert len({r.content for r in sink.requests}) == 1
    assert harness.sim.deliveries.delivered("store/product/updated") == [log[0].payload]


async def test_deleting_a_hook_stops_its_retries(make_harness, clock: ManualClock):
    sink = Sink(500)
    harness = make_harness(webhook_transport=httpx.MockTransport(sink))
    made = await hook(harness.api(), "store/product/updated")
    await harness.api().put("/v3/catalog/products/113", json={"price": 30})
    await harness.sim.deliveries.settle()
    await harness.api().delete(f"/v3/hooks/{made['id']}")
    clock.advance(60)
    await harness.sim.deliveries.drain()
    assert len(sink.requests) == 1


async def test_drain_waits_for_real_time_retries(make_harness):
    sink = Sink(500, 200)
    harness = make_harness(
        clock=SystemClock(), webhook_transport=httpx.MockTransport(sink), webhook_time_scale=1e-4
    )
    await hook(harness.api(), "store/product/updated")
    await harness.api().put("/v3/catalog/products/113", json={"price": 30})
    await harness.sim.deliveries.drain()
    assert [r.ok for r in harness.sim.deliveries.log] == [False, True]
    assert harness.sim.deliveries.pending == 0


async def test_delivery_log_and_drain_over_the_control_api(make_harness):
    sink = Sink()
    harness = make_harness(webhook_transport=httpx.MockTransport(sink))
    control = harness.control()
    await hook(harness.api(), "store/customer/*")
    await harness.api().put("/v3/customers", json=[{"id": 1, "notes": "vip"}])
    drained = await control.post("/_sim/deliveries/drain")
    assert drained.json() == {"drained": True, "pending": 0}
    log = (await control.get("/_sim/deliveries", params={"store_hash": "sousdemo"})).json()
    assert [entry["scope"] for entry in log["data"]] == ["store/customer/updated"]
    assert log["data"][0]["payload"]["data"] == {"type": "customer", "id": 1}
    events = (await control.get("/_sim/stores/sousdemo/events")).json()["data"]
    assert [e["scope"] for e in events] == ["store/customer/updated"]


async def test_drain_endpoint_times_out_while_a_retry_waits_on_a_manual_clock(make_harness):
    sink = Sink(500)
    harness = make_harness(webhook_transport=httpx.MockTransport(sink))
    await hook(harness.api(), "store/product/updated")
    await harness.api().put("/v3/catalog/products/113", json={"price": 30})
    r = await harness.control().post("/_sim/deliveries/drain", params={"timeout_s": 0.05})
    assert r.status_code == 504
    assert r.json() == {"drained": False, "pending": 1}
