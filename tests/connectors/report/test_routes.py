"""GET /v1/stores/{store}/backlog: JSON, CSV by query or Accept header, auth and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Header, HTTPException

from connectors.backorder.actions import AssignParams, assign
from connectors.report.routes import backlog_router
from engine import NotFoundError
from tests.connectors.backorder.conftest import Shop
from tests.connectors.backorder.test_ledger import sell


def caller(authorization: str | None = Header(default=None)) -> str:
    if authorization != "Bearer sous_test":
        raise HTTPException(401, "send an API key")
    return "default"


@pytest.fixture
async def api(shop: Shop) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(
        backlog_router(db=shop.service.db, clients=shop.clients, clock=shop.clock, workspace=caller)
    )
    transport = httpx.ASGITransport(app)
    headers = {"Authorization": "Bearer sous_test"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sous.test", headers=headers
    ) as client:
        yield client


async def test_json(shop: Shop, api: httpx.AsyncClient) -> None:
    pid = shop.product_id("Leather Card Holder")
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10))
    await sell(shop, pid, 2)
    response = await api.get(f"/v1/stores/{shop.hash}/backlog")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert body["units_backordered"] == 2
    assert body["backorders"][0]["limit_left"] == 8
    assert [b["label"] for b in body["by_age"]] == ["<1d", "1-3d", "3-7d", "7-14d", ">14d"]
    assert body["requests"] == 3


async def test_csv_by_query_or_accept(shop: Shop, api: httpx.AsyncClient) -> None:
    by_query = await api.get(f"/v1/stores/{shop.hash}/backlog", params={"format": "csv"})
    assert by_query.status_code == 200
    assert by_query.headers["content-type"].startswith("text/csv")
    assert (
        by_query.headers["content-disposition"]
        == f'attachment; filename="backlog-{shop.hash}-2026-11-27.csv"'
    )
    assert by_query.text.splitlines()[0].startswith("order_id,status_id,status,date_created")
    assert len(by_query.text.splitlines()) == 3
    by_accept = await api.get(f"/v1/stores/{shop.hash}/backlog", headers={"Accept": "text/csv"})
    assert by_accept.headers["content-type"].startswith("text/csv")
    assert by_accept.text == by_query.text
    as_json = await api.get(
        f"/v1/stores/{shop.hash}/backlog", params={"format": "json"}, headers={"Accept": "text/csv"}
    )
    assert as_json.headers["content-type"].startswith("application/json")


async def test_statuses_can_be_chosen(shop: Shop, api: httpx.AsyncClient) -> None:
    response = await api.get(f"/v1/stores/{shop.hash}/backlog", params={"status_id": [1, 11]})
    body = response.json()
    assert body["statuses"] == [1, 11]
    assert sorted(o["status_id"] for o in body["orders"]) == [1, 11]


async def test_unknown_store_and_missing_key(shop: Shop, api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/stores/nosuchstore/backlog")).status_code == 404
    anonymous = await api.get(f"/v1/stores/{shop.hash}/backlog", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    bad = await api.get(f"/v1/stores/{shop.hash}/backlog", params={"window_days": 0})
    assert bad.status_code == 422


async def test_a_busy_store_answers_503(shop: Shop, api: httpx.AsyncClient) -> None:
    faults = await shop.http.put(
        f"{shop.url}/_sim/faults", json={"error_rate": 1.0, "error_status": 503}
    )
    assert faults.status_code == 200
    response = await api.get(f"/v1/stores/{shop.hash}/backlog")
    assert response.status_code == 503


async def test_a_polled_report_reads_the_store_once_while_it_is_fresh(
    shop: Shop, api: httpx.AsyncClient
) -> None:
    pid = shop.product_id("Leather Card Holder")
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10))
    path = f"/v1/stores/{shop.hash}/backlog"
    first = (await api.get(path)).json()
    shop.clock.advance(10)
    assert (await api.get(path)).json() == first  # answered again: no store request spent
    await sell(shop, pid, 1)  # the store changes (and a minute passes)
    later = (await api.get(path)).json()
    assert later["generated_at"] != first["generated_at"]
    assert later["count"] == first["count"] + 1


async def test_a_report_past_its_freshness_is_answered_at_once_and_built_anew_behind(
    shop: Shop, api: httpx.AsyncClient
) -> None:
    pid = shop.product_id("Leather Card Holder")
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=10))
    path = f"/v1/stores/{shop.hash}/backlog"
    first = (await api.get(path)).json()
    assert (await shop.buy(pid, 1, None, 0)).status_code == 201  # the store changes
    shop.clock.advance(20)  # past the 15 s the report is fresh, within the 45 s more it may serve
    assert (await api.get(path)).json() == first  # no wait on the store
    for _ in range(1000):  # the new report is being built; each ask lets it run a little
        later = (await api.get(path)).json()
        if later["generated_at"] != first["generated_at"]:
            break
    assert later["count"] == first["count"] + 1
    shop.clock.advance(100)  # too old to answer: the next ask waits for the store
    assert (await shop.buy(pid, 1, None, 0)).status_code == 201
    assert (await api.get(path)).json()["count"] == later["count"] + 1


class Gone:
    """The shop's clients, until the store is disconnected."""

    def __init__(self, shop: Shop) -> None:
        self.shop, self.connected = shop, True

    async def client(self, workspace: str, store: str) -> Any:
        if not self.connected:
            raise NotFoundError("store", store)
        return await self.shop.clients.client(workspace, store)


def router_app(shop: Shop, clients: Any, wait_for: float = 8.0) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(
        backlog_router(
            db=shop.service.db,
            clients=clients,
            clock=shop.clock,
            workspace=caller,
            wait_for=wait_for,
        )
    )
    headers = {"Authorization": "Bearer sous_test"}
    transport = httpx.ASGITransport(app)
    return httpx.AsyncClient(transport=transport, base_url="http://sous.test", headers=headers)


async def test_a_disconnected_store_has_no_report_even_a_fresh_one(shop: Shop) -> None:
    clients = Gone(shop)
    async with router_app(shop, clients) as api:
        path = f"/v1/stores/{shop.hash}/backlog"
        assert (await api.get(path)).status_code == 200
        clients.connected = False
        assert (await api.get(path)).status_code == 404


async def test_a_slow_report_answers_503_and_the_next_ask_gets_it(shop: Shop) -> None:
    async with router_app(shop, shop.clients, wait_for=0.0) as api:
        path = f"/v1/stores/{shop.hash}/backlog"
        first = await api.get(path)
        assert first.status_code == 503 and first.headers["retry-after"] == "5"
        for _ in range(1000):  # the build goes on meanwhile; each ask lets it run a little
            again = await api.get(path)
            if again.status_code == 200:
                break
        assert again.status_code == 200
        assert again.json()["requests"] == 3  # one build, however many asked
