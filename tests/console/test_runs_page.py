"""The runs pages: the list (filters, pages, live rows), a run's trace, replay, cancel, release
and discard (one by one and in bulk), CSRF, read-only sessions, workspace isolation, and the
live stream opened with the session cookie."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from engine import Engine, NewEvent
from engine.clock import ManualClock
from engine.store.models import RunRow
from tests.api.conftest import product, recipe
from tests.console.conftest import csrf_of, sign_in
from tests.fakes import Recorder

Client = httpx.AsyncClient
Headers = dict[str, str]
FLAKY = [
    {"id": "note", "use": "test.record", "with": {"message": "noted {{ product.id }}"}},
    {"id": "second", "use": "test.flaky", "with": {"mode": "permanent"}},
]
STREAM = {"Accept": "text/event-stream"}
"""What an EventSource sends."""
_RUN_LINK = re.compile(r'href="/console/runs/(run_[a-z0-9]+)"')


async def add(client: Client, admin: Headers, **changes: Any) -> dict[str, Any]:
    made = await client.post("/v1/recipes", json=recipe(**changes), headers=admin)
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


def listed(html: str) -> list[str]:
    """The run ids a list page links to, in order (each once)."""
    return list(dict.fromkeys(_RUN_LINK.findall(html)))


def status_of(engine: Engine, run_id: str) -> str:
    with engine.db.read_session() as s:
        return s.exec(select(RunRow.status).where(RunRow.id == run_id)).one()


async def held_runs(
    client: Client, admin: Headers, engine: Engine, count: int, workspace: str = "default"
) -> list[str]:
    """``count`` held runs of a disabled recipe of ``workspace`` (as flood protection leaves)."""
    made = await add(client, admin, conditions=[], enabled=False)
    ids = []
    with engine.db.session() as s:
        for n in range(count):
            event = await engine.ingest(
                NewEvent(type="test.stock", payload=product(n), workspace=workspace)
            )
            run_id = f"run_held{workspace[:3]}{n:02d}"
            s.add(
                RunRow(
                    id=run_id,
                    workspace_id=workspace,
                    recipe_uid=made["uid"],
                    recipe_version=1,
                    event_id=event.event_id,
                    status="held",
                    next_step=0,
                    created_at=engine.clock.now(),
                )
            )
            ids.append(run_id)
        s.commit()
    return ids


async def test_the_list_shows_runs_newest_first_and_filters_them(
    client: Client,
    admin: Headers,
    signed_in: Client,
    engine: Engine,
    clock: ManualClock,
    recorder: Recorder,
) -> None:
    await add(client, admin, conditions=[])
    await add(client, admin, id="flaky", conditions=[], actions=FLAKY)
    recorder.failures["second"] = 2
    first = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    clock.advance(3600)
    second = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    ok_old, flaky_old = sorted(first.runs, key=lambda r: status_of(engine, r) == "failed")
    ok_new, flaky_new = sorted(second.runs, key=lambda r: status_of(engine, r) == "failed")
    everything = await signed_in.get("/console/runs")
    assert everything.status_code == 200
    assert set(listed(everything.text)[:2]) == {ok_new, flaky_new}
    assert set(listed(everything.text)) == {ok_old, flaky_old, ok_new, flaky_new}
    assert '<th scope="col">Status</th>' in everything.text
    failed = await signed_in.get("/console/runs", params={"status": "failed"})
    assert listed(failed.text) == [flaky_new, flaky_old]
    of_recipe = await signed_in.get("/console/runs", params={"recipe": "sold-out-alert"})
    assert listed(of_recipe.text) == [ok_new, ok_old]
    since = (clock.now() - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    recent = await signed_in.get("/console/runs", params={"since": since})
    assert set(listed(recent.text)) == {ok_new, flaky_new}
    older = await signed_in.get("/console/runs", params={"until": since, "status": "failed"})
    assert listed(older.text) == [flaky_old]
    nonsense = await signed_in.get("/console/runs", params={"since": "yesterday"})
    assert nonsense.status_code == 422
    assert "Since: “yesterday” is not a time" in nonsense.text
    assert len(listed(nonsense.text)) == 4  # the other filters still apply


async def test_the_list_pages_by_cursor_and_only_the_first_page_is_live(
    client: Client,
    admin: Headers,
    signed_in: Client,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("api.console.pages.runs.PAGE_SIZE", 2)
    await add(client, admin, conditions=[])
    made = [await engine.ingest(NewEvent(type="test.stock", payload=product(0))) for _ in "abc"]
    await engine.drain()
    newest_first = [m.runs[0] for m in reversed(made)]
    first = await signed_in.get("/console/runs")
    assert listed(first.text) == newest_first[:2]
    assert 'data-live="/console/runs/rows"' in first.text
    older = re.search(r'href="(/console/runs\?cursor=[^"]+)" rel="next"', first.text)
    assert older is not None
    second = await signed_in.get(older.group(1).replace("&amp;", "&"))
    assert listed(second.text) == newest_first[2:]
    assert "data-live=" not in second.text
    assert 'rel="next"' not in second.text


async def test_the_rows_alone_for_live_updates(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    await add(client, admin, conditions=[])
    made = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    rows = await signed_in.get("/console/runs/rows", params={"status": "succeeded"})
    assert rows.status_code == 200
    assert "<html" not in rows.text and "<tr>" in rows.text
    assert listed(rows.text) == made.runs
    none = await signed_in.get("/console/runs/rows", params={"status": "failed"})
    assert listed(none.text) == [] and "No runs to show" in none.text


async def test_a_run_page_shows_its_trace_and_replays_from_the_failed_step(
    client: Client, admin: Headers, signed_in: Client, engine: Engine, recorder: Recorder
) -> None:
    await add(client, admin, conditions=[], actions=FLAKY)
    recorder.failures["second"] = 1
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    run_id = result.runs[0]
    shown = await signed_in.get(f"/console/runs/{run_id}")
    assert shown.status_code == 200
    text = shown.text
    assert "noted 77" in text  # the first step's rendered input and output
    assert "&#34;echoed&#34;: &#34;noted 77&#34;" in text
    assert "Error:" in text and "test.flaky" in text
    assert "Replay from the failed step (second)" in text
    assert "Failed attempts of second (1)" in text and "Attempt 1: " in text
    assert f'href="/console/events/{result.event_id}"' in text
    replayed = await signed_in.post(
        f"/console/runs/{run_id}/replay", data={"csrf": csrf_of(text), "from": "failed_step"}
    )
    assert replayed.status_code == 303
    new_run = replayed.headers["location"].split("?")[0].rsplit("/", 1)[1]
    assert replayed.headers["location"] == f"/console/runs/{new_run}?done=replayed"
    assert new_run != run_id
    await engine.drain()
    page = await signed_in.get(replayed.headers["location"])
    assert "This is the replay" in page.text
    assert status_of(engine, new_run) == "succeeded"
    assert recorder.named("test.record") == [{"message": "noted 77", "count": 0, "data": {}}]


async def test_a_replay_that_cannot_be_done_says_why(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    await add(client, admin, conditions=[])
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    run_id = result.runs[0]
    page = await signed_in.get(f"/console/runs/{run_id}")
    assert "Replay from the failed step" not in page.text
    refused = await signed_in.post(
        f"/console/runs/{run_id}/replay", data={"csrf": csrf_of(page.text), "from": "failed_step"}
    )
    assert refused.status_code == 409
    assert "has no failed step" in refused.text


async def test_release_discard_and_cancel_from_a_run_page(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    first, second, third = await held_runs(client, admin, engine, 3)
    page = await signed_in.get(f"/console/runs/{first}")
    csrf = csrf_of(page.text)
    assert "Release" in page.text and "Discard" in page.text
    released = await signed_in.post(f"/console/runs/{first}/release", data={"csrf": csrf})
    assert released.status_code == 303
    assert released.headers["location"] == f"/console/runs/{first}?done=released"
    discarded = await signed_in.post(f"/console/runs/{second}/discard", data={"csrf": csrf})
    assert discarded.headers["location"] == f"/console/runs/{second}?done=discarded"
    cancelled = await signed_in.post(f"/console/runs/{third}/cancel", data={"csrf": csrf})
    assert cancelled.headers["location"] == f"/console/runs/{third}?done=cancelled"
    await engine.drain()
    assert status_of(engine, first) == "succeeded"
    assert status_of(engine, second) == "discarded"
    assert status_of(engine, third) == "cancelled"
    again = await signed_in.post(f"/console/runs/{second}/release", data={"csrf": csrf})
    assert again.status_code == 409
    assert "That was refused" in again.text and "discarded" in again.text
    shown = await signed_in.get(f"/console/runs/{second}?done=discarded")
    assert "The run is discarded." in shown.text
    assert "Cancel the run" not in shown.text  # a finished run cannot be cancelled


async def test_bulk_release_and_discard_change_exactly_the_chosen_runs(
    client: Client, admin: Headers, signed_in: Client, engine: Engine, make_key: Any
) -> None:
    ids = await held_runs(client, admin, engine, 5)
    foreign = await held_runs(client, make_key("other", "admin"), engine, 1, workspace="other")
    page = await signed_in.get("/console/runs", params={"status": "held"})
    assert all(f'value="{i}"' in page.text for i in ids)
    csrf = csrf_of(page.text)
    back = "/console/runs?status=held"
    released = await signed_in.post(
        "/console/runs/bulk",
        data={"csrf": csrf, "action": "release", "back": back, "run": [ids[0], ids[2]]},
    )
    assert released.status_code == 303
    assert released.headers["location"] == ("/console/runs?done=released&status=held&n=2&skipped=0")
    discarded = await signed_in.post(
        "/console/runs/bulk",
        data={"csrf": csrf, "action": "discard", "back": back, "run": [ids[3], foreign[0]]},
    )
    assert discarded.headers["location"] == (
        "/console/runs?done=discarded&status=held&n=1&skipped=1"
    )
    await engine.drain()
    statuses = [status_of(engine, i) for i in ids]
    assert statuses == ["succeeded", "held", "succeeded", "discarded", "held"]
    assert status_of(engine, foreign[0]) == "held"
    after = await signed_in.get(discarded.headers["location"])
    assert "Discarded 1 held run. 1 could not be" in after.text
    assert set(listed(after.text)) == {ids[1], ids[4]}
    nothing = await signed_in.post(
        "/console/runs/bulk", data={"csrf": csrf, "action": "release", "back": back}
    )
    assert nothing.headers["location"] == "/console/runs?done=none-chosen&status=held"
    elsewhere = await signed_in.post(
        "/console/runs/bulk",
        data={"csrf": csrf, "action": "release", "back": "https://evil.test/", "run": ids[1]},
    )
    assert elsewhere.headers["location"].startswith("/console/runs?done=released")


async def test_every_run_form_refuses_a_missing_csrf_token(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    (run_id,) = await held_runs(client, admin, engine, 1)
    forms: list[tuple[str, dict[str, Any]]] = [
        (f"/console/runs/{run_id}/replay", {"from": "start"}),
        (f"/console/runs/{run_id}/cancel", {}),
        (f"/console/runs/{run_id}/release", {}),
        (f"/console/runs/{run_id}/discard", {}),
        ("/console/runs/bulk", {"action": "discard", "run": run_id}),
    ]
    for path, data in forms:
        refused = await signed_in.post(path, data={**data, "csrf": "forged"})
        assert refused.status_code == 403, path
        assert "This form has expired" in refused.text
        assert (await signed_in.post(path, data=data)).status_code == 403, path
    with engine.db.read_session() as s:
        assert len(s.exec(select(RunRow)).all()) == 1
    assert status_of(engine, run_id) == "held"


async def test_a_read_only_session_sees_runs_but_cannot_change_them(
    app: Any, client: Client, admin: Headers, new_key: Any, engine: Engine
) -> None:
    (run_id,) = await held_runs(client, admin, engine, 1)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sous.test") as reader:
        assert (await sign_in(reader, new_key("default", "read"))).status_code == 303
        page = await reader.get(f"/console/runs/{run_id}")
        assert page.status_code == 200 and "Release" not in page.text
        listing = await reader.get("/console/runs")
        assert run_id in listing.text and "Release chosen" not in listing.text
        refused = await reader.post(
            f"/console/runs/{run_id}/release", data={"csrf": csrf_of(page.text)}
        )
        assert refused.status_code == 403
        assert "This session may only look" in refused.text
    assert status_of(engine, run_id) == "held"


async def test_another_workspaces_run_answers_the_not_found_page(
    client: Client, signed_in: Client, engine: Engine, make_key: Any
) -> None:
    (theirs,) = await held_runs(client, make_key("other", "admin"), engine, 1, workspace="other")
    shown = await signed_in.get(f"/console/runs/{theirs}")
    assert shown.status_code == 404
    assert "Page not found" in shown.text and "another workspace" in shown.text
    assert theirs not in (await signed_in.get("/console/runs")).text
    csrf = csrf_of((await signed_in.get("/console/runs")).text)
    for action in ("release", "discard", "cancel"):
        refused = await signed_in.post(f"/console/runs/{theirs}/{action}", data={"csrf": csrf})
        assert refused.status_code == 404, action
    replay = await signed_in.post(
        f"/console/runs/{theirs}/replay", data={"csrf": csrf, "from": "start"}
    )
    assert replay.status_code == 404
    assert status_of(engine, theirs) == "held"


def messages(body: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields and not block.startswith(":"):
            found.append((fields["event"], json.loads(fields["data"])))
    return found


async def until_subscribed(engine: Engine, count: int) -> None:
    """Let the stream's task run until it has subscribed (no timed waits)."""
    for _ in range(10_000):
        if len(engine._listeners) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError("the stream never subscribed")


async def test_the_live_stream_opens_with_the_session_cookie_and_sends_runs(
    client: Client, admin: Headers, signed_in: Client, engine: Engine, make_key: Any
) -> None:
    await add(client, admin, conditions=[])
    before = len(engine._listeners)
    reading = asyncio.create_task(
        signed_in.get("/console/live?max_events=3&max_seconds=30", headers=STREAM)
    )
    await until_subscribed(engine, before + 1)
    other = make_key("other", "write")
    await client.post("/v1/events", json={"type": "test.stock", "payload": {}}, headers=other)
    sent = await client.post(
        "/v1/events", json={"type": "test.stock", "payload": product(0)}, headers=admin
    )
    assert len(sent.json()["runs"]) == 1
    await engine.drain()
    answer = await reading
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    got = messages(answer.text)
    assert got[0] == ("event", {"count": 1})  # this workspace's event, not the other's
    assert {kind for kind, _ in got[1:]} == {"run"}  # one message, or one per change
    assert sum(data["count"] for kind, data in got if kind == "run") == 2  # running, succeeded
    assert len(engine._listeners) == before


async def test_the_live_stream_refuses_a_visitor_without_a_session(browser: Client) -> None:
    refused = await browser.get("/console/live?max_seconds=1", headers=STREAM)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("text/plain")
    browser.cookies.set("sous_session", "made-up")
    forged = await browser.get("/console/live", headers=STREAM)
    assert forged.status_code == 401


async def test_the_live_stream_is_only_for_a_client_that_asks_for_one(
    signed_in: Client, engine: Engine
) -> None:
    before = len(engine._listeners)
    anything = await signed_in.get("/console/live", headers={"Accept": "*/*"})
    assert anything.status_code == 406
    assert "Accept: text/event-stream" in anything.text
    assert len(engine._listeners) == before


async def test_a_large_step_output_is_cut_on_the_page(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    big = [{"id": "note", "use": "test.record", "with": {"message": "x" * 30_000}}]
    await add(client, admin, conditions=[], actions=big)
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    page = await signed_in.get(f"/console/runs/{result.runs[0]}")
    assert page.status_code == 200
    assert page.text.count("more characters: the API has it all") == 2  # input and output
    assert "x" * 30_000 not in page.text and "x" * 19_000 in page.text


async def test_a_replay_with_the_recipe_as_it_is_now(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    await add(client, admin, conditions=[])
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    changed = await client.put(
        "/v1/recipes/sold-out-alert",
        json=recipe(conditions=[], name="Now"),
        headers={**admin, "If-Match": '"1"'},
    )
    assert changed.status_code == 200
    page = await signed_in.get(f"/console/runs/{result.runs[0]}")
    assert "Replay with the recipe as it is now" in page.text
    data = {"csrf": csrf_of(page.text), "from": "start"}
    now = await signed_in.post(
        f"/console/runs/{result.runs[0]}/replay", data={**data, "version": "current"}
    )
    then = await signed_in.post(f"/console/runs/{result.runs[0]}/replay", data=data)
    versions = []
    for answer in (now, then):
        assert answer.status_code == 303
        run_id = answer.headers["location"].split("?")[0].rsplit("/", 1)[1]
        with engine.db.read_session() as s:
            versions.append(s.exec(select(RunRow.recipe_version).where(RunRow.id == run_id)).one())
    assert versions == [2, 1]
    await engine.drain()


async def test_a_run_page_shows_the_rows_of_a_parallel_steps_branches(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    branches = {
        "staff": [
            {"id": "say", "use": "test.record", "with": {"message": "staff {{ product.id }}"}}
        ],
        "note": [{"id": "say", "use": "test.record", "with": {"message": "note {{ product.id }}"}}],
    }
    await add(client, admin, conditions=[], actions=[{"id": "notify", "parallel": branches}])
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    shown = await signed_in.get(f"/console/runs/{result.runs[0]}")
    assert shown.status_code == 200
    rows = re.findall(r'<th scope="row">([^<]+)</th>\s*<td><code>([^<]+)</code>', shown.text)
    assert rows == [
        ("notify", "core.parallel"),
        ("notify.staff.say", "test.record"),
        ("notify.note.say", "test.record"),
    ]
    assert "Output of notify.note.say" in shown.text and "note 77" in shown.text


async def test_a_call_step_links_the_called_run_and_says_while_it_waits(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    called = recipe(
        id="fulfil",
        trigger={"type": "sous.recipe.called"},
        conditions=[],
        actions=[{"id": "pause", "use": "core.wait", "with": {"for": "1h"}}],
    )
    assert (await client.post("/v1/recipes", json=called, headers=admin)).status_code == 201
    call = {"id": "call", "use": "core.call_recipe", "with": {"recipe": "fulfil", "input": {}}}
    await add(client, admin, conditions=[], actions=[call])
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    caller = await signed_in.get(f"/console/runs/{result.runs[0]}")
    link = re.search(r'Called run: <a href="/console/runs/(run_\w+)">', caller.text)
    assert link is not None and "(this run waits for it to end)" in caller.text
    assert status_of(engine, link.group(1)) == "waiting"
    assert (await signed_in.get(f"/console/runs/{link.group(1)}")).status_code == 200
