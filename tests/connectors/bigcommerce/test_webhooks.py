"""The webhook endpoint on its own (in process, no simulator): authentication, validation,
stored before acknowledged, duplicates, and every example payload BigCommerce publishes."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select

from connectors.bigcommerce.normalize import NORMALIZE
from connectors.bigcommerce.stores import SECRET_HEADER
from connectors.bigcommerce.webhooks import WebhookStats, build_router
from connectors.bigcommerce.wiring import BigCommerceRuntime
from engine.clock import ManualClock
from engine.registry import Registry
from engine.store.db import Database
from engine.store.models import EventRow, JobRow, RunRow
from sous.container import Container, connectors
from sous.wiring import wire_bigcommerce
from tests.conftest import SPECS
from tests.connectors.bigcommerce.harness import container_for, insert_store

pytestmark = pytest.mark.asyncio(loop_scope="module")
EXAMPLES = sorted((SPECS / "webhook-callbacks" / "data").glob("*.json"))
SECRET = "whsec-unit-test"
ENVELOPE = {
    "scope": "store/product/inventory/updated",
    "store_id": "1025646",
    "data": {
        "type": "product", "id": 167,
        "inventory": {"product_id": 167, "method": "absolute", "value": -3},
    },
    "hash": "cba9eef399fbd6d384489bca6cacad24794b1086",
    "created_at": 1561478843,
    "producer": "stores/abc123",
}  # fmt: skip


@dataclass
class Shared:
    http: httpx.AsyncClient
    container: Container
    runtime: BigCommerceRuntime
    stores: int = 0


@dataclass
class Receiver:
    """One store in its own workspace, on an endpoint shared by the module's tests."""

    shared: Shared
    store_id: str
    workspace: str

    @property
    def runtime(self) -> BigCommerceRuntime:
        return self.shared.runtime

    async def post(
        self,
        body: Any,
        secret: str | None = SECRET,
        store: str | None = None,
        message_id: str | None = None,
    ) -> httpx.Response:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        if message_id is not None:
            headers["webhook-id"] = message_id
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        url = f"/v1/webhooks/bigcommerce/{store or self.store_id}"
        return await self.shared.http.post(url, content=content, headers=headers)

    def events(self) -> list[EventRow]:
        with self.shared.container.db.session() as s:
            return list(
                s.exec(select(EventRow).where(EventRow.workspace_id == self.workspace)).all()
            )

    def jobs(self) -> list[JobRow]:
        ids = [e.id for e in self.events()]
        with self.shared.container.db.session() as s:
            return list(s.exec(select(JobRow).where(col(JobRow.ref).in_(ids))).all())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared() -> AsyncIterator[Shared]:
    db = Database("sqlite://")  # in memory: the engine is not started here
    db.create_all()
    container = container_for(db, ManualClock(), Registry(connectors()))
    async with contextlib.AsyncExitStack() as stack:
        runtime = await wire_bigcommerce(container, stack)
        app = FastAPI()
        app.include_router(runtime.router())
        transport = httpx.ASGITransport(app)
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://sous.test")
        )
        yield Shared(http, container, runtime)
    db.dispose()


@pytest_asyncio.fixture(loop_scope="module")
async def receiver(shared: Shared) -> Receiver:
    shared.stores += 1
    workspace = f"ws{shared.stores}"
    store_id = insert_store(
        shared.container.db, store_hash="abc123", token="tok", workspace=workspace,
        base_url="http://127.0.0.1:9/stores/abc123", secret=SECRET,
    )  # fmt: skip
    return Receiver(shared, store_id, workspace)


def _example(path: Path) -> Any:
    text = path.read_text().strip()
    if not text:
        skip = pytest.mark.skip(reason=f"{path.name} is empty upstream (README.md)")
        return pytest.param(None, marks=skip, id=path.stem)
    return pytest.param(json.loads(text), id=path.stem)


@pytest.mark.parametrize("payload", [_example(p) for p in EXAMPLES])
async def test_every_published_example_is_accepted(receiver: Receiver, payload: Any) -> None:
    response = await receiver.post(payload)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted"}
    [event] = receiver.events()
    assert event.type == "bigcommerce.webhook"
    assert event.payload["scope"] == payload["scope"]
    assert event.payload["data"] == payload["data"]
    assert event.source == "webhook"
    assert [job.kind for job in receiver.jobs()] == [NORMALIZE]


async def test_the_examples_are_all_there() -> None:
    listed = (SPECS / "webhook-callbacks" / "data" / "list.txt").read_text().split()
    assert len(EXAMPLES) == 44
    assert set(listed) <= {p.name for p in EXAMPLES}


async def test_stored_with_its_job_before_the_answer(receiver: Receiver) -> None:
    response = await receiver.post(ENVELOPE)
    assert response.status_code == 200
    [event] = receiver.events()  # committed by the time the answer arrived
    assert event.store == "abc123"
    assert event.workspace_id == receiver.workspace
    assert event.occurred_at.replace(tzinfo=None).timestamp() == pytest.approx(1561478843, abs=1)
    [job] = receiver.jobs()
    assert job.kind == NORMALIZE
    assert job.ref == event.id


async def test_a_redelivered_message_is_acknowledged_and_dropped(receiver: Receiver) -> None:
    first = await receiver.post(ENVELOPE, message_id="msg_1")
    again = await receiver.post(ENVELOPE, message_id="msg_1")
    assert first.json() == {"status": "accepted"}
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate"}
    assert len(receiver.events()) == 1
    assert len(receiver.jobs()) == 1
    assert receiver.runtime.webhooks.per_store["abc123"] >= 2


async def test_the_same_body_in_another_message_is_another_change(receiver: Receiver) -> None:
    # the documented hash covers ``data`` only: two sales of one unit in one second send the
    # same body, told apart by their webhook-id; without one, nothing tells them apart
    bodies = [("msg_a", ENVELOPE), ("msg_b", ENVELOPE), (None, ENVELOPE), (None, ENVELOPE)]
    answers = [(await receiver.post(body, message_id=mid)).json() for mid, body in bodies]
    assert answers == [{"status": "accepted"}] * 4
    assert len(receiver.events()) == 4
    assert len(receiver.jobs()) == 4


@pytest.mark.parametrize("secret", [None, "", "whsec-wrong", SECRET + "x"])
async def test_a_wrong_or_missing_secret_is_refused(
    receiver: Receiver, secret: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    response = await receiver.post(ENVELOPE, secret=secret)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert receiver.events() == []
    assert SECRET not in caplog.text
    assert "refused" in caplog.text


async def test_an_unknown_store_is_404(receiver: Receiver) -> None:
    response = await receiver.post(ENVELOPE, store="sto_nope")
    assert response.status_code == 404
    assert receiver.events() == []
    by_hash = await receiver.post(ENVELOPE, store="abc123")  # the path takes the Sous id
    assert by_hash.status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        (b"{not json", 400, None),
        ({**ENVELOPE, "scope": None}, 422, "/scope"),
        ({k: v for k, v in ENVELOPE.items() if k != "hash"}, 422, "/hash"),
        ({**ENVELOPE, "created_at": "yesterday"}, 422, "/created_at"),
        ({**ENVELOPE, "data": "x"}, 422, "/data"),
        ({**ENVELOPE, "scope": "order/created"}, 422, "/scope"),
        ([ENVELOPE], 422, "/"),
    ],
    ids=["not-json", "scope-null", "no-hash", "created-at-text", "data-text", "bad-scope", "array"],
)
async def test_malformed_bodies_are_refused_with_a_reason(
    receiver: Receiver, body: Any, status: int, where: str | None
) -> None:
    response = await receiver.post(body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if where is not None:
        assert where in error["message"]
        assert error["details"][0]["path"] == where
    assert receiver.events() == []


async def test_a_numeric_store_id_from_older_pages_is_accepted(receiver: Receiver) -> None:
    response = await receiver.post({**ENVELOPE, "store_id": 1025646})
    assert response.status_code == 200
    assert receiver.events()[0].payload["store_id"] == "1025646"


async def test_raw_deliveries_can_trigger_recipes_by_scope(receiver: Receiver) -> None:
    engine = receiver.shared.container.engine
    recipe = {
        "id": "abandoned", "name": "Abandoned carts",
        "trigger": {"type": "bigcommerce.webhook", "with": {"scopes": ["store/cart/*"]}},
        "actions": [{"use": "core.log", "with": {"message": "cart {{ data.id }}"}}],
    }  # fmt: skip
    stored = engine.recipes.create(receiver.workspace, recipe)
    engine.refresh(stored)
    try:
        for name in ("store_cart_abandoned", "store_order_created"):
            payload = json.loads(
                (SPECS / "webhook-callbacks" / "data" / f"{name}.json").read_text()
            )
            assert (await receiver.post(payload)).status_code == 200
    finally:
        engine.refresh(None, stored.uid)
    with receiver.shared.container.db.session() as s:
        runs = s.exec(select(RunRow).where(RunRow.recipe_uid == stored.uid)).all()
    [run] = runs
    [cart] = [e for e in receiver.events() if e.payload["scope"] == "store/cart/abandoned"]
    assert run.event_id == cart.id


async def test_a_passing_database_fault_is_tried_again_before_the_answer(
    receiver: Receiver,
) -> None:
    """A lock or a lost connection while storing costs a retry now, not BigCommerce's next
    delivery a minute later; a fault that does not pass is answered 503 at once."""
    real = receiver.shared.container.engine.ingest
    faults: list[Exception | None] = [_locked(), _locked(), None, ValueError("bad row")]
    calls: list[str] = []

    async def flaky(new: Any, follow_up: Any) -> Any:
        calls.append(new.type)
        fault = faults.pop(0)
        if fault is not None:
            raise fault
        return await real(new, follow_up)

    app = FastAPI()
    app.include_router(build_router(receiver.runtime.stores, flaky, WebhookStats()))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sous.test") as http:
        url = f"/v1/webhooks/bigcommerce/{receiver.store_id}"
        headers = {SECRET_HEADER: SECRET, "webhook-id": "msg_flaky"}
        stored = await http.post(url, json=ENVELOPE, headers=headers)
        assert (stored.status_code, len(calls)) == (200, 3)
        assert len(receiver.events()) == 1
        refused = await http.post(url, json=ENVELOPE, headers={**headers, "webhook-id": "m2"})
        assert (refused.status_code, len(calls)) == (503, 4)
        assert refused.json()["error"]["code"] == "unavailable"


def _locked() -> OperationalError:
    return OperationalError("INSERT INTO event", {}, sqlite3.OperationalError("database is locked"))
