"""``GET /v1/stream``: every message has an ``id:``; a client reconnecting with
``Last-Event-ID`` gets what it missed from the process's ring, or ``event: gap`` when that is
gone; a browser opens it with the console's session cookie."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from api.live import LiveHub
from engine import Engine

Message = tuple[str, str, dict[str, Any]]


def parse(body: str) -> list[Message]:
    found = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
    return found


async def until_subscribed(hub: LiveHub, count: int) -> None:
    """Until ``count`` streams subscribed (the session is looked up in a thread first, so
    loop turns alone do not measure the wait: at most 5 s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while loop.time() < deadline:
        if hub.subscribers >= count:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the stream never subscribed")


def announce(engine: Engine, *runs: str, workspace: str = "default") -> None:
    for run in runs:
        engine.announce(run, "rcp_1", workspace, "succeeded")


async def read(
    http: httpx.AsyncClient, hub: LiveHub, *runs: str, count: int, **headers: str
) -> list[Message]:
    """Open the stream, announce ``runs`` once it listens, and return its messages once it has
    sent ``count`` notifications (a ``gap`` message is not one)."""
    before = hub.subscribers
    reading = asyncio.create_task(
        http.get(f"/v1/stream?max_events={count}&max_seconds=10", headers=headers)
    )
    await until_subscribed(hub, before + 1)
    announce(hub.engine, *runs)
    answer = await reading
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


def runs_of(messages: list[Message]) -> list[str]:
    return [data["id"] for _, kind, data in messages if kind == "run"]


def numbers(messages: list[Message]) -> list[int]:
    return [int(i.rsplit("-", 1)[1]) for i, _, _ in messages]


async def test_a_client_resumes_after_its_last_event_id(
    client: httpx.AsyncClient, admin: dict[str, str], engine: Engine
) -> None:
    hub = LiveHub(engine, keep=True)  # as wired by sous serve
    engine.services.add(hub)
    first = await read(client, hub, "run_1", "run_2", count=2, **admin)
    assert runs_of(first) == ["run_1", "run_2"]
    assert all(i for i, _, _ in first)
    announce(engine, "run_3", "run_4")  # while nobody listens
    announce(engine, "run_x", workspace="elsewhere")
    again = await read(client, hub, "run_5", count=3, **admin, **{"Last-Event-ID": first[-1][0]})
    assert runs_of(again) == ["run_3", "run_4", "run_5"]
    assert numbers(again)[0] == numbers(first)[-1] + 1
    # The same with ?since= for clients that cannot set the header.
    since = first[-1][0]
    other = await client.get(f"/v1/stream?since={since}&max_events=3&max_seconds=5", headers=admin)
    assert runs_of(parse(other.text)) == ["run_3", "run_4", "run_5"]


async def test_a_client_is_told_when_what_it_missed_is_gone(
    client: httpx.AsyncClient, admin: dict[str, str], engine: Engine
) -> None:
    hub = LiveHub(engine, keep=True, ring=3)
    engine.services.add(hub)
    first = await read(client, hub, "run_1", count=1, **admin)
    announce(engine, "run_2", "run_3", "run_4", "run_5")  # more than the ring keeps
    resumed = await read(client, hub, count=3, **admin, **{"Last-Event-ID": first[-1][0]})
    assert resumed[0][1:] == ("gap", {})
    assert runs_of(resumed) == ["run_3", "run_4", "run_5"]  # what the ring still had
    strange = await read(client, hub, "run_6", count=1, **admin, **{"Last-Event-ID": "abc-1"})
    assert [kind for _, kind, _ in strange] == ["gap", "run"]


async def test_a_hub_made_on_demand_starts_a_new_epoch_when_it_listens_again(
    client: httpx.AsyncClient, admin: dict[str, str], engine: Engine
) -> None:
    hub = LiveHub.of(engine)
    first = await read(client, hub, "run_1", count=1, **admin)
    assert engine._listeners == []  # it let go of the engine with its last client
    announce(engine, "run_2")  # unheard
    resumed = await read(client, hub, "run_3", count=1, **admin, **{"Last-Event-ID": first[0][0]})
    assert [(kind, data.get("id")) for _, kind, data in resumed] == [
        ("gap", None),
        ("run", "run_3"),
    ]


async def test_a_browser_streams_with_its_console_session(
    signed_in: httpx.AsyncClient, browser: httpx.AsyncClient, engine: Engine
) -> None:
    hub = LiveHub.of(engine)
    got = await read(signed_in, hub, "run_1", count=1)
    assert runs_of(got) == ["run_1"]
    signed_in.cookies.clear()
    refused = await signed_in.get("/v1/stream?max_seconds=1")
    assert refused.status_code == 401
    forged = await browser.get("/v1/stream?max_seconds=1", headers={"Cookie": "sous_session=x"})
    assert forged.status_code == 401
