"""The events pages: the list (type, store, time; live rows), an event's page with every recipe's
decision, workspace isolation, and the live stream's event messages."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from engine import Engine, NewEvent
from engine.clock import ManualClock
from tests.api.conftest import product, recipe
from tests.console.test_runs_page import STREAM, messages, until_subscribed

Client = httpx.AsyncClient
Headers = dict[str, str]
_EVENT_LINK = re.compile(r'href="/console/events/(evt_[a-z0-9]+)"')


def listed(html: str) -> list[str]:
    return list(dict.fromkeys(_EVENT_LINK.findall(html)))


async def send(client: Client, headers: Headers, **body: Any) -> str:
    sent = await client.post("/v1/events", json={"type": "test.stock", **body}, headers=headers)
    assert sent.status_code == 202, sent.text
    return str(sent.json()["event_id"])


async def test_the_list_shows_events_newest_first_and_filters_them(
    client: Client, admin: Headers, signed_in: Client, clock: ManualClock
) -> None:
    first = await send(client, admin, payload=product(1), store="abc123")
    clock.advance(3600)
    second = await send(client, admin, type="custom.sync", payload={})
    third = await send(client, admin, payload=product(2), store="xyz789")
    everything = await signed_in.get("/console/events")
    assert everything.status_code == 200
    assert listed(everything.text) == [third, second, first]
    assert '<th scope="col">Type</th>' in everything.text
    by_type = await signed_in.get("/console/events", params={"type": "test.stock"})
    assert listed(by_type.text) == [third, first]
    by_store = await signed_in.get("/console/events", params={"store": "abc123"})
    assert listed(by_store.text) == [first]
    cut = (clock.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    recent = await signed_in.get("/console/events", params={"since": cut})
    assert listed(recent.text) == [third, second]
    older = await signed_in.get("/console/events", params={"until": cut})
    assert listed(older.text) == [first]
    wrong = await signed_in.get("/console/events", params={"until": "noon"})
    assert wrong.status_code == 422 and "Until: “noon” is not a time" in wrong.text


async def test_the_list_pages_and_its_rows_come_alone_for_live_updates(
    client: Client, admin: Headers, signed_in: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("api.console.pages.events.PAGE_SIZE", 2)
    ids = [await send(client, admin, payload=product(n)) for n in range(3)]
    first = await signed_in.get("/console/events")
    assert listed(first.text) == [ids[2], ids[1]]
    assert 'data-live="/console/events/rows"' in first.text
    older = re.search(r'href="(/console/events\?cursor=[^"]+)" rel="next"', first.text)
    assert older is not None
    second = await signed_in.get(older.group(1))
    assert listed(second.text) == [ids[0]] and "data-live" not in second.text
    rows = await signed_in.get("/console/events/rows", params={"type": "test.stock"})
    assert rows.status_code == 200 and "<html" not in rows.text
    assert listed(rows.text) == [ids[2], ids[1]]


async def test_an_event_page_shows_every_recipes_decision(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    for made in (
        recipe(),
        recipe(id="low-stock", conditions=[{"<": [{"var": "product.inventory_level"}, 3]}]),
        recipe(id="paused"),
    ):
        assert (await client.post("/v1/recipes", json=made, headers=admin)).status_code == 201
    await client.post("/v1/recipes/paused/disable", headers=admin)
    sent = await client.post(
        "/v1/events", json={"type": "test.stock", "payload": product(2)}, headers=admin
    )
    event_id, (run_id,) = sent.json()["event_id"], sent.json()["runs"]
    await engine.drain()
    page = await signed_in.get(f"/console/events/{event_id}")
    assert page.status_code == 200
    text = page.text
    assert "1 of 3 recipes considered" in text
    rows = text.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert 'href="/console/recipes/low-stock"' in rows[0]  # matched first
    assert f'href="/console/runs/{run_id}"' in rows[0]
    refused = next(r for r in rows if "sold-out-alert" in r)
    assert "not matched" in refused and "<strong>conditions</strong>" in refused
    assert "(condition #1)" in refused and "product.inventory_level" in refused
    paused = next(r for r in rows if "/console/recipes/paused" in r)
    assert "<strong>disabled</strong>" in paused
    assert "&#34;inventory_level&#34;: 2" in text  # the payload
    assert "1 stopped at conditions; 1 stopped at disabled" in text
    assert "decisions are listed" not in text


async def test_an_event_page_lists_a_bounded_number_of_decisions(
    client: Client, admin: Headers, signed_in: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for slug in ("c-third", "a-first", "b-second"):
        made = recipe(id=slug, conditions=[{"<": [{"var": "product.inventory_level"}, 0]}])
        assert (await client.post("/v1/recipes", json=made, headers=admin)).status_code == 201
    event_id = await send(client, admin, payload=product(2))
    monkeypatch.setattr("api.console.pages.events.DECISIONS_SHOWN", 2)
    page = await signed_in.get(f"/console/events/{event_id}")
    assert page.status_code == 200
    assert "0 of 3 recipes considered; 3 stopped at conditions" in page.text
    assert "The first 2 of 3 decisions are listed" in page.text
    shown = re.findall(r'<th scope="row"><a href="/console/recipes/([a-z-]+)">', page.text)
    assert shown == ["a-first", "b-second"]


async def test_another_workspaces_event_answers_the_not_found_page(
    client: Client, signed_in: Client, make_key: Any
) -> None:
    theirs = await send(client, make_key("other", "write"), payload=product(0))
    shown = await signed_in.get(f"/console/events/{theirs}")
    assert shown.status_code == 404 and "Page not found" in shown.text
    assert theirs not in (await signed_in.get("/console/events")).text
    assert theirs not in (await signed_in.get("/console/events/rows")).text


async def test_the_live_stream_sends_this_workspaces_events_a_burst_as_one_message(
    client: Client, signed_in: Client, engine: Engine, make_key: Any
) -> None:
    before = len(engine._listeners)
    reading = asyncio.create_task(
        signed_in.get("/console/live?max_events=5&max_seconds=30", headers=STREAM)
    )
    await until_subscribed(engine, before + 1)
    await send(client, make_key("other", "write"), payload={})
    burst = [NewEvent(type="test.stock", payload={}, dedup_key=f"b-{n}") for n in range(5)]
    await engine.ingest_many(burst)  # announced one after the other, with no pause between
    answer = await reading
    assert messages(answer.text) == [("event", {"count": 5})]
