"""``POST /v1/runs/bulk/{replay|release|discard}``: a preview counts the runs a filter names
and changes nothing; acting goes page by page (``next``), pinned to the runs that matched at
first (``upto``), so replays that fail again are not replayed by the same operation."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import col, func, select

from engine import Engine
from engine.model.events import NewEvent
from engine.store.models import RunRow
from tests.api.conftest import error_of, product, recipe
from tests.fakes import Recorder

Client = httpx.AsyncClient
Headers = dict[str, str]
FAILING = [{"id": "boom", "use": "test.flaky", "with": {"mode": "permanent"}}]


async def add(client: Client, headers: Headers, **changes: Any) -> dict[str, Any]:
    made = await client.post("/v1/recipes", json=recipe(**changes), headers=headers)
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


def count(engine: Engine, *where: Any) -> int:
    with engine.db.session() as s:
        return int(s.exec(select(func.count()).select_from(RunRow).where(*where)).one())


async def failures(engine: Engine, events: int, type_: str = "test.stock") -> None:
    for n in range(events):
        await engine.ingest(NewEvent(type=type_, payload=product(0), dedup_key=f"{type_}-{n}"))
    await engine.drain()


async def bulk(client: Client, headers: Headers, action: str, **body: Any) -> dict[str, Any]:
    answer = await client.post(f"/v1/runs/bulk/{action}", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_replay_previews_then_replays_page_by_page(
    client: Client, admin: Headers, engine: Engine, make_key: Any, recorder: Recorder
) -> None:
    recorder.failures["boom"] = 10_000  # every run of both recipes fails, replays too
    await add(client, admin, conditions=[], actions=FAILING)
    await add(
        client, admin, id="other", conditions=[], actions=FAILING, trigger={"type": "custom.x"}
    )
    await failures(engine, 7)
    await failures(engine, 2, "custom.x")
    assert count(engine, col(RunRow.status) == "failed") == 9

    preview = await bulk(client, admin, "replay", recipe="sold-out-alert")
    assert (preview["matched"], preview["done"], preview["made"]) == (7, 0, [])
    assert count(engine) == 9  # a preview changes nothing
    elsewhere = await bulk(client, make_key("elsewhere", "write"), "replay")
    assert elsewhere["matched"] == 0  # another workspace's runs are not counted

    upto, after, made, pages = preview["upto"], None, [], 0
    while True:
        page = await bulk(
            client, admin, "replay", recipe="sold-out-alert", preview=False, limit=3,
            upto=upto, after=after,
        )  # fmt: skip
        await engine.drain()  # the replays fail again: later pages must not take them up
        made += page["made"]
        pages += 1
        if page["next"] is None:
            break
        after = page["next"]
    assert pages == 3 and len(made) == len(set(made)) == 7
    assert count(engine) == 16
    again = await bulk(client, admin, "replay", recipe="sold-out-alert")
    assert again["matched"] == 14  # the originals and their failed replays


async def test_release_and_discard_take_held_runs(
    client: Client, admin: Headers, engine: Engine, recorder: Recorder
) -> None:
    made = await add(client, admin, conditions=[], enabled=False)
    events = [
        await engine.ingest(NewEvent(type="test.stock", payload=product(0), dedup_key=f"h{n}"))
        for n in range(5)
    ]
    with engine.db.session() as s:
        for n, event in enumerate(events):
            s.add(
                RunRow(
                    id=f"run_held_{n}",
                    workspace_id="default",
                    recipe_uid=made["uid"],
                    recipe_version=1,
                    event_id=event.event_id,
                    status="held",
                    next_step=0,
                    created_at=engine.clock.now(),
                )
            )
        s.commit()
    preview = await bulk(client, admin, "release", recipe="sold-out-alert")
    assert (preview["matched"], preview["done"]) == (5, 0)
    released = await bulk(client, admin, "release", preview=False, limit=2)
    assert (released["done"], released["next"]) == (2, "run_held_1")
    await engine.drain()
    assert count(engine, col(RunRow.status) == "succeeded") == 2
    assert len(recorder.named("test.record")) == 4  # two steps each
    dropped = await bulk(client, admin, "discard", preview=False)
    assert (dropped["matched"], dropped["done"], dropped["next"]) == (3, 3, None)
    assert count(engine, col(RunRow.status) == "discarded") == 3


async def test_a_status_the_action_cannot_take_is_refused(
    client: Client, admin: Headers, make_key: Any
) -> None:
    wrong = await client.post("/v1/runs/bulk/discard", json={"status": ["failed"]}, headers=admin)
    assert wrong.status_code == 422
    assert "held runs only" in error_of(wrong)["message"]
    running = await client.post("/v1/runs/bulk/replay", json={"status": ["running"]}, headers=admin)
    assert "finished runs only" in error_of(running)["message"]
    window = {"since": "2026-11-28T00:00:00Z", "until": "2026-11-27T00:00:00Z"}
    assert (
        await client.post("/v1/runs/bulk/replay", json=window, headers=admin)
    ).status_code == 422
    reader = make_key("default", "read")
    assert (await client.post("/v1/runs/bulk/replay", json={}, headers=reader)).status_code == 403
    unknown = await client.post("/v1/runs/bulk/restart", json={}, headers=admin)
    assert unknown.status_code in (404, 405)
