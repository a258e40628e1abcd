"""Events and runs through the API: send, list, explain; traces, replay, hold, cancel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import select

from api.app import create_app
from api.keys import create_key
from engine import Engine
from engine.clock import ManualClock
from engine.model.events import NewEvent
from engine.store.models import JobRow, RunRow
from sous.container import Container
from tests.api.conftest import error_of, product, recipe
from tests.fakes import Recorder

Client = httpx.AsyncClient
Headers = dict[str, str]
FLAKY = [
    {"id": "note", "use": "test.record", "with": {"message": "noted {{ product.id }}"}},
    {"id": "second", "use": "test.flaky", "with": {"mode": "permanent"}},
    {"id": "third", "use": "test.record", "with": {"message": "after {{ steps.note.echoed }}"}},
]


async def add(client: Client, headers: Headers, **changes: Any) -> dict[str, Any]:
    made = await client.post("/v1/recipes", json=recipe(**changes), headers=headers)
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


async def send(client: Client, headers: Headers, **body: Any) -> httpx.Response:
    return await client.post("/v1/events", json={"type": "custom.sync", **body}, headers=headers)


async def test_sent_event_is_stored_matched_and_run(
    client: Client, admin: Headers, engine: Engine, recorder: Recorder
) -> None:
    await add(client, admin)
    sent = await send(
        client, admin, type="test.stock", payload=product(0), dedup_key="erp-1", store="abc123"
    )
    assert sent.status_code == 202, sent.text
    body = sent.json()
    assert body["duplicate"] is False
    assert len(body["runs"]) == 1
    again = (
        await send(client, admin, type="test.stock", payload=product(0), dedup_key="erp-1")
    ).json()
    assert again == {"event_id": body["event_id"], "duplicate": True, "runs": []}
    await engine.drain()
    assert len(recorder.named("test.record")) == 2
    shown = (await client.get(f"/v1/events/{body['event_id']}", headers=admin)).json()
    assert shown["payload"] == product(0)
    assert shown["store"] == "abc123"
    assert shown["decisions"] == [
        {
            "recipe_uid": shown["decisions"][0]["recipe_uid"],
            "recipe_id": "sold-out-alert",
            "recipe_version": 1,
            "matched": True,
            "stage": "matched",
            "reason": None,
            "run_id": body["runs"][0],
        }
    ]


async def test_custom_event_fires_its_recipe(
    client: Client, admin: Headers, engine: Engine, recorder: Recorder
) -> None:
    await add(client, admin, trigger={"type": "custom.sync"})
    sent = (await send(client, admin, payload=product(0))).json()
    assert len(sent["runs"]) == 1
    other = (await send(client, admin, type="custom.other", payload=product(0))).json()
    assert other["runs"] == []
    await engine.drain()
    assert len(recorder.named("test.record")) == 2


async def test_event_decisions_explain_a_failed_condition(client: Client, admin: Headers) -> None:
    await add(client, admin)
    sent = (await send(client, admin, type="test.stock", payload=product(5))).json()
    assert sent["runs"] == []
    decision = (await client.get(f"/v1/events/{sent['event_id']}", headers=admin)).json()[
        "decisions"
    ][0]
    assert decision["matched"] is False
    assert decision["stage"] == "conditions"
    assert decision["reason"]["condition"] == 0
    assert "5" in str(decision["reason"])


async def test_event_types_must_be_known(client: Client, admin: Headers) -> None:
    unknown = await client.post(
        "/v1/events", json={"type": "nobody.listens", "payload": {}}, headers=admin
    )
    assert unknown.status_code == 422
    assert error_of(unknown)["details"] == [
        {"path": "/type", "message": error_of(unknown)["message"]}
    ]
    malformed = await client.post(
        "/v1/events", json={"type": "no dots", "payload": {}}, headers=admin
    )
    assert malformed.status_code == 422
    assert error_of(malformed)["details"][0]["path"] == "/type"
    registered = await client.post(
        "/v1/events", json={"type": "test.stock", "payload": product(1)}, headers=admin
    )
    assert registered.status_code == 202


async def test_events_list_filters_and_pages(
    client: Client, admin: Headers, clock: ManualClock
) -> None:
    start = clock.now()
    ids = []
    for n in range(4):
        clock.advance(60)
        body = {
            "type": "custom.a" if n % 2 else "custom.b",
            "payload": {"n": n},
            "store": "s1" if n < 2 else "s2",
        }
        ids.append((await client.post("/v1/events", json=body, headers=admin)).json()["event_id"])
    listed = (await client.get("/v1/events?limit=3", headers=admin)).json()
    assert [e["id"] for e in listed["data"]] == ids[::-1][:3]
    rest = (
        await client.get(f"/v1/events?limit=3&cursor={listed['next_cursor']}", headers=admin)
    ).json()
    assert [e["id"] for e in rest["data"]] == [ids[0]]
    assert rest["next_cursor"] is None
    typed = (await client.get("/v1/events?type=custom.a", headers=admin)).json()
    assert [e["id"] for e in typed["data"]] == [ids[3], ids[1]]
    stored = (await client.get("/v1/events?store=s1", headers=admin)).json()
    assert [e["id"] for e in stored["data"]] == [ids[1], ids[0]]
    since = (start + timedelta(seconds=150)).isoformat()
    until = (start + timedelta(seconds=210)).isoformat()
    window = await client.get("/v1/events", params={"since": since, "until": until}, headers=admin)
    assert [e["id"] for e in window.json()["data"]] == [ids[2]]
    assert window.json()["data"][0]["received_at"] == (
        start + timedelta(seconds=180)
    ).isoformat().replace("+00:00", "Z")


async def test_run_trace_and_replay_from_the_failed_step(
    client: Client, admin: Headers, engine: Engine, recorder: Recorder
) -> None:
    made = await add(client, admin, conditions=[], actions=FLAKY)
    recorder.failures["second"] = 1
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    run_id = result.runs[0]
    run = (await client.get(f"/v1/runs/{run_id}", headers=admin)).json()
    assert run["status"] == "failed"
    assert run["recipe_id"] == "sold-out-alert"
    assert [(s["id"], s["status"]) for s in run["steps"]] == [
        ("note", "succeeded"),
        ("second", "failed"),
    ]
    assert run["steps"][0]["output"] == {"echoed": "noted 77", "count": 0}
    replayed = await client.post(
        f"/v1/runs/{run_id}/replay", json={"from": "failed_step"}, headers=admin
    )
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["from_step"] == 1
    assert replayed.json()["recipe_version"] == 1
    await engine.drain()
    again = (await client.get(f"/v1/runs/{replayed.json()['run_id']}", headers=admin)).json()
    assert again["status"] == "succeeded", again
    assert [s["status"] for s in again["steps"]] == ["succeeded", "succeeded", "succeeded"]
    assert [c[1]["message"] for c in recorder.calls if c[0] == "test.record"] == [
        "noted 77",
        "after noted 77",
    ]
    event = (await client.get(f"/v1/events/{replayed.json()['event_id']}", headers=admin)).json()
    assert event["source"] == "replay"
    assert event["target_recipe"] == made["uid"]
    assert event["decisions"][0]["stage"] == "replay"


async def test_replay_from_start_with_the_current_version(
    client: Client, admin: Headers, engine: Engine, recorder: Recorder
) -> None:
    await add(client, admin, conditions=[])
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    run_id = result.runs[0]
    no_failure = await client.post(
        f"/v1/runs/{run_id}/replay", json={"from": "failed_step"}, headers=admin
    )
    assert no_failure.status_code == 409
    changed = recipe(
        conditions=[], actions=[{"id": "only", "use": "test.record", "with": {"message": "v2"}}]
    )
    await client.put(
        "/v1/recipes/sold-out-alert", json=changed, headers={**admin, "If-Match": '"1"'}
    )
    current = await client.post(
        f"/v1/runs/{run_id}/replay", json={"recipe_version": "current"}, headers=admin
    )
    original = await client.post(f"/v1/runs/{run_id}/replay", headers=admin)
    assert current.json()["recipe_version"] == 2
    assert original.json()["recipe_version"] == 1
    await engine.drain()
    messages = [c[1]["message"] for c in recorder.calls]
    assert messages.count("v2") == 1
    assert messages.count("Cat Eye Sunglasses sold out") == 2
    runs = (
        await client.get("/v1/runs?recipe=sold-out-alert&status=succeeded", headers=admin)
    ).json()
    assert len(runs["data"]) == 3


async def test_runs_list_filters(
    client: Client, admin: Headers, engine: Engine, clock: ManualClock
) -> None:
    await add(client, admin, conditions=[])
    first = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    clock.advance(3600)
    second = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    listed = (await client.get("/v1/runs?limit=1", headers=admin)).json()
    assert [r["id"] for r in listed["data"]] == second.runs
    older = (await client.get(f"/v1/runs?cursor={listed['next_cursor']}", headers=admin)).json()
    assert [r["id"] for r in older["data"]] == first.runs
    since = (clock.now() - timedelta(minutes=1)).isoformat()
    recent = (await client.get("/v1/runs", params={"since": since}, headers=admin)).json()
    assert [r["id"] for r in recent["data"]] == second.runs
    by_event = (await client.get(f"/v1/runs?event_id={first.event_id}", headers=admin)).json()
    assert [r["id"] for r in by_event["data"]] == first.runs
    assert (await client.get("/v1/runs?recipe=other", headers=admin)).json()["data"] == []
    assert (await client.get("/v1/runs?status=failed", headers=admin)).json()["data"] == []


async def held_run(client: Client, admin: Headers, engine: Engine) -> str:
    made = await add(client, admin, conditions=[], enabled=False)
    event = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    with engine.db.session() as s:
        s.add(
            RunRow(
                id="run_held",
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
    return "run_held"


async def test_release_a_held_run(
    client: Client, admin: Headers, engine: Engine, recorder: Recorder
) -> None:
    run_id = await held_run(client, admin, engine)
    released = await client.post(f"/v1/runs/{run_id}/release", headers=admin)
    assert released.status_code == 200
    assert released.json()["status"] in ("queued", "running", "succeeded")  # a worker may be quick
    await engine.drain()
    assert (await client.get(f"/v1/runs/{run_id}", headers=admin)).json()["status"] == "succeeded"
    assert len(recorder.named("test.record")) == 2
    twice = await client.post(f"/v1/runs/{run_id}/release", headers=admin)
    assert twice.status_code == 409
    assert "succeeded" in error_of(twice)["message"]


async def test_discard_a_held_run(
    client: Client, admin: Headers, engine: Engine, recorder: Recorder
) -> None:
    run_id = await held_run(client, admin, engine)
    discarded = await client.post(f"/v1/runs/{run_id}/discard", headers=admin)
    assert discarded.json()["status"] == "discarded"
    assert discarded.json()["finished_at"] is not None
    again = await client.post(f"/v1/runs/{run_id}/cancel", headers=admin)
    assert again.status_code == 409
    assert "discarded" in error_of(again)["message"]
    await engine.drain()
    assert recorder.calls == []


async def test_cancel_a_held_run(client: Client, admin: Headers, engine: Engine) -> None:
    run_id = await held_run(client, admin, engine)
    cancelled = await client.post(f"/v1/runs/{run_id}/cancel", headers=admin)
    assert cancelled.json()["status"] == "cancelled"
    assert (await client.post(f"/v1/runs/{run_id}/release", headers=admin)).status_code == 409


async def test_cancel_a_retrying_run(
    client: Client, admin: Headers, engine: Engine, recorder: Recorder, clock: ManualClock
) -> None:
    steps = [{"id": "second", "use": "test.flaky", "with": {"mode": "retryable"}}]
    await add(client, admin, conditions=[], actions=steps)
    recorder.failures["second"] = 1
    result = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    run_id = result.runs[0]
    assert (await client.get(f"/v1/runs/{run_id}", headers=admin)).json()["status"] == "retrying"
    cancelled = await client.post(f"/v1/runs/{run_id}/cancel", headers=admin)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    clock.advance(600)
    await engine.drain()
    assert (await client.get(f"/v1/runs/{run_id}", headers=admin)).json()["status"] == "cancelled"
    assert len(recorder.named("test.flaky")) == 1
    with engine.db.session() as s:
        assert s.exec(select(JobRow)).all() == []


async def test_cancel_a_queued_run_before_it_starts(
    api_db, registry, clock: ManualClock, recorder: Recorder, settings
) -> None:
    idle = Engine(api_db, registry, clock=clock)
    app = create_app(Container(settings, api_db, registry, idle, idle.services, clock))
    headers = {"Authorization": f"Bearer {create_key(api_db, 'default', ['write'], 't')}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://sous.test"
    ) as client:
        await add(client, headers, conditions=[])
        sent = (await send(client, headers, type="test.stock", payload=product(0))).json()
        cancelled = await client.post(f"/v1/runs/{sent['runs'][0]}/cancel", headers=headers)
        assert cancelled.json()["status"] == "cancelled"
        await idle.start(workers=1)
        try:
            await idle.drain()
        finally:
            await idle.stop()
        assert (await client.get(f"/v1/runs/{sent['runs'][0]}", headers=headers)).json()[
            "status"
        ] == "cancelled"
    assert recorder.calls == []


async def test_a_recipe_calls_another_and_the_trace_shows_the_called_run(
    client: Client, admin: Headers, engine: Engine, recorder: Recorder
) -> None:
    said = {"id": "say", "use": "test.record", "with": {"message": "for {{ sku }}"}}
    called = {"trigger": {"type": "sous.recipe.called"}, "conditions": [], "actions": [said]}
    await add(client, admin, id="flow", **called)
    step = {
        "id": "call",
        "use": "core.call_recipe",
        "with": {"recipe": "flow", "input": {"sku": "{{ sku }}"}, "timeout": "10m"},
    }
    await add(
        client, admin, id="caller", trigger={"type": "custom.sync"}, conditions=[], actions=[step]
    )
    sent = await send(client, admin, payload={"sku": "SUN-1"})
    assert sent.status_code == 202, sent.text
    await engine.drain()
    [run_id] = sent.json()["runs"]
    run = (await client.get(f"/v1/runs/{run_id}", headers=admin)).json()
    assert run["status"] == "succeeded"
    out = run["steps"][0]["output"]
    assert out["status"] == "succeeded"
    assert out["result"] == {"say": {"echoed": "for SUN-1", "count": 0}}
    shown = (await client.get(f"/v1/runs/{out['run_id']}", headers=admin)).json()
    assert shown["recipe_id"] == "flow"
    assert shown["status"] == "succeeded"


async def test_a_call_with_a_bad_timeout_or_a_caller_field_is_a_422(
    client: Client, admin: Headers
) -> None:
    step = {"id": "call", "use": "core.call_recipe", "with": {"recipe": "flow", "timeout": "9d"}}
    made = await client.post("/v1/recipes", json=recipe(actions=[step]), headers=admin)
    assert made.status_code == 422, made.text
    assert error_of(made)["details"] == [
        {
            "path": "/actions/0/with/timeout",
            "message": "value error, a call waits from 1 second to 7 days",
        }
    ]
    step["with"] = {"recipe": "flow", "input": {"caller": 1}}
    made = await client.post("/v1/recipes", json=recipe(actions=[step]), headers=admin)
    assert made.status_code == 422, made.text
    assert "`caller` is set by Sous" in made.text
