"""Customers (v3 and v2), customer groups, /hooks, /v2/store and /v2/time against the specs."""

from __future__ import annotations

from engine.clock import ManualClock


def scopes(sim) -> list[str]:
    return [e.scope for e in sim.demo_store.events]


async def test_customers_list_with_id_in_and_group_filter(api):
    everyone = await api.get("/v3/customers")
    assert everyone.json()["meta"]["pagination"]["total"] == 5
    picked = await api.get("/v3/customers", params={"id:in": "3,1"})
    assert [c["email"] for c in picked.json()["data"]] == [
        "jane.doe@example.com",
        "ava.chen@example.com",
    ]
    wholesale = await api.get("/v3/customers", params={"customer_group_id:in": "2"})
    assert [c["first_name"] for c in wholesale.json()["data"]] == ["John"]
    by_email = await api.get("/v3/customers", params={"email:in": "sofia.rossi@example.com"})
    assert by_email.json()["data"][0]["customer_group_id"] == 0


async def test_create_customers_fires_created(api, sim):
    r = await api.post(
        "/v3/customers",
        json=[
            {
                "email": "new@example.com",
                "first_name": "New",
                "last_name": "Person",
                "customer_group_id": 3,
            }
        ],
    )
    assert r.status_code == 200
    customer = r.json()["data"][0]
    assert customer["id"] == 6
    assert customer["customer_group_id"] == 3
    assert scopes(sim) == ["store/customer/created"]
    assert sim.demo_store.events[0].data == {"type": "customer", "id": 6}


async def test_create_customers_rejects_duplicates_missing_fields_and_big_batches(api, sim):
    dup = [{"email": "JANE.DOE@example.com", "first_name": "J", "last_name": "D"}]
    assert (await api.post("/v3/customers", json=dup)).status_code == 422
    missing = [{"email": "x@example.com"}]
    assert (await api.post("/v3/customers", json=missing)).status_code == 422
    bad_group = [
        {"email": "y@example.com", "first_name": "Y", "last_name": "Z", "customer_group_id": 77}
    ]
    assert (await api.post("/v3/customers", json=bad_group)).status_code == 422
    many = [{"email": f"p{i}@example.com", "first_name": "P", "last_name": "Q"} for i in range(11)]
    assert (await api.post("/v3/customers", json=many)).status_code == 413
    assert sim.demo_store.events == []


async def test_update_customers_v3_batch(api, sim):
    r = await api.put("/v3/customers", json=[{"id": 5, "customer_group_id": 2, "notes": "b2b"}])
    assert r.status_code == 200
    assert r.json()["data"][0]["customer_group_id"] == 2
    assert scopes(sim) == ["store/customer/updated"]
    assert (await api.put("/v3/customers", json=[{"id": 99, "notes": "x"}])).status_code == 422


async def test_v2_customer_get_and_group_change(api, sim, clock: ManualClock):
    got = await api.get("/v2/customers/4")
    assert got.json()["customer_group_id"] == 1
    assert got.json()["date_created"].endswith("+0000")
    clock.advance(10)
    moved = await api.put("/v2/customers/4", json={"customer_group_id": 3})
    assert moved.status_code == 200
    assert moved.json()["customer_group_id"] == 3
    assert moved.json()["date_modified"] != got.json()["date_modified"]
    assert scopes(sim) == ["store/customer/updated"]
    same = await api.put("/v2/customers/4", json={"customer_group_id": 3})
    assert same.status_code == 200
    assert len(sim.demo_store.events) == 1
    assert (await api.put("/v2/customers/4", json={"customer_group_id": 55})).status_code == 400
    assert (await api.get("/v2/customers/99")).status_code == 404


async def test_customer_groups(api):
    listed = await api.get("/v2/customer_groups")
    assert [g["name"] for g in listed.json()] == ["Retail", "Wholesale", "VIP"]
    created = await api.post("/v2/customer_groups", json={"name": "Staff", "is_default": False})
    assert created.status_code == 200
    group_id = created.json()["id"]
    assert (await api.get(f"/v2/customer_groups/{group_id}")).json()["name"] == "Staff"
    assert (await api.get("/v2/customer_groups/count")).json() == {"count": 4}
    liked = await api.get("/v2/customer_groups", params={"name:like": "sale"})
    assert [g["name"] for g in liked.json()] == ["Wholesale"]
    assert (await api.post("/v2/customer_groups", json={"name": "Staff"})).status_code == 409
    assert (await api.post("/v2/customer_groups", json={})).status_code == 400
    assert (await api.get("/v2/customer_groups/99")).status_code == 404


HOOK = {
    "scope": "store/order/*",
    "destination": "https://hooks.example.com/bc",
    "is_active": True,
    "headers": {"X-Api-Key": "s3cret"},
}


async def test_hooks_crud(api):
    created = await api.post("/v3/hooks", json=HOOK)
    assert created.status_code == 200
    hook = created.json()["data"]
    assert (hook["scope"], hook["headers"], hook["is_active"]) == (
        "store/order/*",
        {"X-Api-Key": "s3cret"},
        True,
    )
    assert hook["store_hash"] == "sousdemo"
    assert isinstance(hook["created_at"], int)
    listed = await api.get("/v3/hooks")
    assert [h["id"] for h in listed.json()["data"]] == [hook["id"]]
    got = await api.get(f"/v3/hooks/{hook['id']}")
    assert got.json()["data"]["destination"] == HOOK["destination"]
    off = await api.put(f"/v3/hooks/{hook['id']}", json={"is_active": False, "headers": None})
    assert off.json()["data"]["is_active"] is False
    assert off.json()["data"]["headers"] is None
    inactive = await api.get("/v3/hooks", params={"is_active": "false"})
    assert len(inactive.json()["data"]) == 1
    admin = await api.get("/v3/hooks/admin")
    assert admin.json()["data"]["hooks_list"][0]["status"] == "inactive"
    deleted = await api.delete(f"/v3/hooks/{hook['id']}")
    assert deleted.json()["data"]["id"] == hook["id"]
    assert (await api.get(f"/v3/hooks/{hook['id']}")).status_code == 404


async def test_hook_filters_and_limits(api):
    for n in range(10):
        body = {**HOOK, "scope": "store/product/updated", "destination": f"https://h{n}.example"}
        assert (await api.post("/v3/hooks", json=body)).status_code == 200
    eleventh = {**HOOK, "scope": "store/product/updated", "destination": "https://h10.example"}
    assert (await api.post("/v3/hooks", json=eleventh)).status_code == 422
    assert (await api.post("/v3/hooks", json=HOOK)).status_code == 200
    assert (await api.post("/v3/hooks", json=HOOK)).status_code == 422  # same scope+destination
    by_scope = await api.get("/v3/hooks", params={"scope": "store/order/*"})
    assert len(by_scope.json()["data"]) == 1
    by_destination = await api.get("/v3/hooks", params={"destination": "https://h3.example"})
    assert len(by_destination.json()["data"]) == 1
    missing = await api.post("/v3/hooks", json={"scope": "store/order/created"})
    assert missing.status_code == 422
    assert missing.json()["errors"] == {"destination": "error.path.missing"}
    assert (await api.put("/v3/hooks/999", json={"is_active": True})).status_code == 404


async def test_https_only_when_configured(make_harness):
    strict = make_harness(require_https_destinations=True).api()
    plain = {**HOOK, "destination": "http://127.0.0.1:9000/hook"}
    assert (await strict.post("/v3/hooks", json=plain)).status_code == 422
    port = {**HOOK, "destination": "https://hooks.example.com:8443/hook"}
    assert (await strict.post("/v3/hooks", json=port)).status_code == 422
    assert (await strict.post("/v3/hooks", json=HOOK)).status_code == 200


async def test_store_information_and_time(api, sim, clock: ManualClock):
    info = (await api.get("/v2/store")).json()
    assert info["id"] == "sousdemo"
    assert info["store_id"] == sim.demo_store.store_id
    assert info["name"] == "Sous Demo Store"
    first = (await api.get("/v2/time")).json()["time"]
    clock.advance(90)
    assert (await api.get("/v2/time")).json()["time"] == first + 90
