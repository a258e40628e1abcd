"""The recipes pages: the list (last run, failures in 24 hours, filters, pages), a recipe's page
(YAML editor with problems at their line and field, optimistic concurrency, enable and disable,
versions, diff and rollback, recent runs, decisions, dry runs), creating one from YAML, CSRF,
read-only sessions and workspace isolation."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest
from sqlmodel import select

from engine import Engine, NewEvent
from engine.clock import ManualClock
from engine.store.models import RecipeRow
from tests.api.conftest import product, recipe
from tests.console.conftest import csrf_of, sign_in
from tests.fakes import Recorder

Client = httpx.AsyncClient
Headers = dict[str, str]
_RECIPE_ROW = re.compile(r'<th scope="row"><a href="/console/recipes/([a-z0-9_-]+)">')
_TEXTAREA = re.compile(r"<textarea[^>]*>(.*?)</textarea>", re.S)
YAML = """\
id: sold-out-alert
name: Tell staff when a product sells out
trigger:
  type: test.stock
conditions:
  - {"<=": [{"var": "product.inventory_level"}, 0]}
actions:
  - id: note
    use: test.record
    with:
      message: "{{ product.name }} sold out"
"""


async def add(client: Client, admin: Headers, **changes: Any) -> dict[str, Any]:
    made = await client.post("/v1/recipes", json=recipe(**changes), headers=admin)
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


def listed(page: str) -> list[str]:
    return _RECIPE_ROW.findall(page)


def textarea(page: str) -> str:
    found = _TEXTAREA.search(page)
    assert found, "no editor on the page"
    return html.unescape(found.group(1))


def stored(engine: Engine, slug: str, workspace: str = "default") -> RecipeRow:
    with engine.db.read_session() as s:
        return s.exec(
            select(RecipeRow).where(RecipeRow.slug == slug, RecipeRow.workspace_id == workspace)
        ).one()


def row_of(page: str, slug: str) -> str:
    return page.split(f'<a href="/console/recipes/{slug}">')[1].split("</tr>")[0]


async def test_the_list_shows_last_runs_and_failures_of_the_last_24_hours(
    client: Client,
    admin: Headers,
    signed_in: Client,
    new_key: Any,
    engine: Engine,
    recorder: Recorder,
    clock: ManualClock,
) -> None:
    failing = [{"id": "push", "use": "test.flaky", "with": {"mode": "permanent"}}]
    await add(client, admin, id="breaks", name="Push to the ERP", conditions=[], actions=failing)
    await add(client, admin, id="quiet", name="Never fires", trigger={"type": "custom.none"})
    recorder.failures["push"] = 5
    old = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    clock.advance(2 * 3600)
    new = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    page = await signed_in.get("/console/recipes")
    assert page.status_code == 200
    assert listed(page.text) == ["breaks", "quiet"]
    breaks = row_of(page.text, "breaks")
    assert "Push to the ERP" in breaks and "<code>test.stock</code>" in breaks
    assert f'href="/console/runs/{new.runs[0]}"' in breaks and "failed" in breaks
    assert 'class="bad-count">2</a>' in breaks
    assert "never" in row_of(page.text, "quiet")
    clock.advance(23 * 3600)  # the first failure is now more than 24 hours old
    assert (await sign_in(signed_in, new_key())).status_code == 303  # the session was idle
    later = await signed_in.get("/console/recipes")
    assert 'class="bad-count">1</a>' in row_of(later.text, "breaks")
    assert old.runs[0] not in later.text


async def test_the_list_filters_by_text_trigger_and_state_and_pages(
    client: Client, admin: Headers, signed_in: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add(client, admin, id="a-stock", name="Stock watcher")
    await add(client, admin, id="b-sync", name="ERP sync", trigger={"type": "custom.sync"})
    await add(client, admin, id="c-other", name="Other sync", trigger={"type": "custom.other"})
    await client.post("/v1/recipes/c-other/disable", headers=admin)
    get = signed_in.get
    assert listed((await get("/console/recipes", params={"q": "erp"})).text) == ["b-sync"]
    custom = await get("/console/recipes", params={"trigger": "custom.*"})
    assert listed(custom.text) == ["b-sync", "c-other"]
    exact = await get("/console/recipes", params={"trigger": "test.stock"})
    assert listed(exact.text) == ["a-stock"]
    off = await get("/console/recipes", params={"enabled": "no"})
    assert listed(off.text) == ["c-other"]
    on = await get("/console/recipes", params={"enabled": "yes", "q": "sync"})
    assert listed(on.text) == ["b-sync"]
    upper = await get("/console/recipes", params={"q": "STOCK WATCH"})
    assert listed(upper.text) == ["a-stock"]
    across = await get("/console/recipes", params={"q": "b-sync erp"})  # the id, then the name
    assert listed(across.text) == ["b-sync"]
    await add(client, admin, id="d-cafe", name="Café été", trigger={"type": "custom.sync"})
    accented = await get("/console/recipes", params={"q": "ÉTÉ", "trigger": "custom.*"})
    assert listed(accented.text) == ["d-cafe"]
    monkeypatch.setattr("api.console.pages.recipes.PAGE_SIZE", 2)
    first = await get("/console/recipes")
    assert listed(first.text) == ["a-stock", "b-sync"]
    older = re.search(r'href="(/console/recipes\?cursor=[^"]+)" rel="next"', first.text)
    assert older is not None
    assert listed((await get(older.group(1))).text) == ["c-other", "d-cafe"]


async def test_a_recipe_page_shows_its_document_runs_and_decisions(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    await add(client, admin, store="abc123")
    fired = await engine.ingest(NewEvent(type="test.stock", payload=product(0), store="abc123"))
    missed = await engine.ingest(NewEvent(type="test.stock", payload=product(5), store="abc123"))
    await engine.drain()
    page = await signed_in.get("/console/recipes/sold-out-alert")
    assert page.status_code == 200
    text = page.text
    document = textarea(text)
    assert "id: sold-out-alert\n" in document and "use: test.record" in document
    assert '  - {"<=": [{"var": "product.inventory_level"}, 0]}' in document
    assert "version:" not in document  # the form carries the version
    assert 'name="version" value="1"' in text
    assert "store &#39;abc123&#39; is not connected" in text
    assert f'href="/console/runs/{fired.runs[0]}"' in text
    decisions = text.split('id="decisions-title"')[1].split("</section>")[0]
    rows = decisions.split("<tr>")
    missed_row = next(r for r in rows if missed.event_id in r)
    assert "not matched" in missed_row and "<strong>conditions</strong>" in missed_row
    assert "(condition #1)" in missed_row
    assert fired.runs[0] in next(r for r in rows if fired.event_id in r)


async def test_saving_edited_yaml_makes_a_new_version(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    await add(client, admin)
    page = await signed_in.get("/console/recipes/sold-out-alert")
    edited = textarea(page.text).replace("Tell staff when", "Warn staff when")
    saved = await signed_in.post(
        "/console/recipes/sold-out-alert",
        data={"csrf": csrf_of(page.text), "version": "1", "document": edited},
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/console/recipes/sold-out-alert?done=saved"
    row = stored(engine, "sold-out-alert")
    assert (row.version, row.document["name"]) == (2, "Warn staff when a product sells out")
    after = await signed_in.get(saved.headers["location"])
    assert "Saved as a new version." in after.text and 'name="version" value="2"' in after.text
    assert engine.compiled(row.uid) is not None  # the dispatcher's index has it


async def test_yaml_with_an_error_shows_its_line_and_field_and_saves_nothing(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    await add(client, admin)
    csrf = csrf_of((await signed_in.get("/console/recipes/sold-out-alert")).text)
    wrong = YAML.replace("use: test.record", "use: test.nothing")
    refused = await signed_in.post(
        "/console/recipes/sold-out-alert",
        data={"csrf": csrf, "version": "1", "document": wrong},
    )
    assert refused.status_code == 422
    problems = refused.text.split('id="editor-problems"')[1].split("</div>")[0]
    assert "<strong>Line 9</strong>, <code>actions[0].use</code>" in problems
    assert "test.nothing" in problems
    assert "9 | use: test.nothing" in problems
    assert textarea(refused.text) == wrong  # the edited text is kept
    assert 'aria-invalid="true"' in refused.text
    broken = YAML.replace("  type: test.stock", "  type: [test.stock")
    unreadable = await signed_in.post(
        "/console/recipes/sold-out-alert",
        data={"csrf": csrf, "version": "1", "document": broken},
    )
    assert unreadable.status_code == 422
    assert "<strong>Line" in unreadable.text and "invalid YAML" in unreadable.text
    assert textarea(unreadable.text) == broken
    missing = YAML.replace("name: Tell staff when a product sells out\n", "")
    no_name = await signed_in.post(
        "/console/recipes/sold-out-alert",
        data={"csrf": csrf, "version": "1", "document": missing + "colour: blue\n"},
    )
    assert no_name.status_code == 422
    assert "<code>colour</code>" in no_name.text and "<strong>Line 11</strong>" in no_name.text
    row = stored(engine, "sold-out-alert")
    assert (row.version, row.document["name"]) == (1, "Tell staff when a product sells out")


async def test_a_save_based_on_an_old_version_is_refused_and_keeps_the_text(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    await add(client, admin)
    page = await signed_in.get("/console/recipes/sold-out-alert")
    csrf, text = csrf_of(page.text), textarea(page.text)
    meanwhile = await client.put(
        "/v1/recipes/sold-out-alert",
        json=recipe(name="Changed elsewhere"),
        headers={**admin, "If-Match": '"1"'},
    )
    assert meanwhile.status_code == 200
    mine = text.replace("Tell staff when", "Mine, tell staff when")
    stale = await signed_in.post(
        "/console/recipes/sold-out-alert", data={"csrf": csrf, "version": "1", "document": mine}
    )
    assert stale.status_code == 409
    assert "Someone saved version 2 since you opened version 1" in stale.text
    assert textarea(stale.text) == mine
    assert 'name="version" value="2"' in stale.text
    assert stored(engine, "sold-out-alert").document["name"] == "Changed elsewhere"
    again = await signed_in.post(
        "/console/recipes/sold-out-alert", data={"csrf": csrf, "version": "2", "document": mine}
    )
    assert again.status_code == 303
    assert stored(engine, "sold-out-alert").document["name"].startswith("Mine, tell")


async def test_a_new_recipe_from_yaml(signed_in: Client, engine: Engine) -> None:
    form = await signed_in.get("/console/recipes/_new")
    assert form.status_code == 200 and "id: sold-out-alert" in textarea(form.text)
    csrf = csrf_of(form.text)
    made = await signed_in.post("/console/recipes", data={"csrf": csrf, "document": YAML})
    assert made.status_code == 303
    assert made.headers["location"] == "/console/recipes/sold-out-alert?done=created"
    row = stored(engine, "sold-out-alert")
    assert row.version == 1 and engine.compiled(row.uid) is not None
    twice = await signed_in.post("/console/recipes", data={"csrf": csrf, "document": YAML})
    assert twice.status_code == 409 and "already exists" in twice.text
    assert textarea(twice.text) == YAML
    wrong = YAML.replace("id: sold-out-alert", "id: Not A Slug")
    refused = await signed_in.post("/console/recipes", data={"csrf": csrf, "document": wrong})
    assert refused.status_code == 422
    assert "<strong>Line 1</strong>, <code>id</code>" in refused.text
    empty = await signed_in.post("/console/recipes", data={"csrf": csrf, "document": " "})
    assert empty.status_code == 422 and "The recipe is empty" in empty.text
    with engine.db.read_session() as s:
        assert len(s.exec(select(RecipeRow)).all()) == 1


async def test_disable_with_a_reason_then_enable(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    await add(client, admin)
    csrf = csrf_of((await signed_in.get("/console/recipes/sold-out-alert")).text)
    off = await signed_in.post(
        "/console/recipes/sold-out-alert/disable",
        data={"csrf": csrf, "reason": "stock count this week"},
    )
    assert off.headers["location"] == "/console/recipes/sold-out-alert?done=disabled"
    row = stored(engine, "sold-out-alert")
    assert (row.enabled, row.disabled_reason) == (False, "stock count this week")
    page = await signed_in.get("/console/recipes")
    assert "stock count this week" in row_of(page.text, "sold-out-alert")
    too_long = await signed_in.post(
        "/console/recipes/sold-out-alert/disable", data={"csrf": csrf, "reason": "x" * 1001}
    )
    assert too_long.status_code == 422 and "up to 1,000 characters" in too_long.text
    on = await signed_in.post("/console/recipes/sold-out-alert/enable", data={"csrf": csrf})
    assert on.headers["location"] == "/console/recipes/sold-out-alert?done=enabled"
    assert stored(engine, "sold-out-alert").enabled is True


async def test_versions_diff_and_rollback_as_a_new_version(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    await add(client, admin)
    await client.put(
        "/v1/recipes/sold-out-alert",
        json=recipe(name="Second name"),
        headers={**admin, "If-Match": '"1"'},
    )
    page = await signed_in.get("/console/recipes/sold-out-alert")
    assert 'href="/console/recipes/sold-out-alert/diff?from=1&amp;to=2"' in page.text
    diff = await signed_in.get("/console/recipes/sold-out-alert/diff?from=1&to=2")
    assert diff.status_code == 200
    assert (
        "<del>-  &#34;name&#34;: &#34;Tell staff when a product sells out&#34;,</del>" in diff.text
    )
    assert "<ins>+  &#34;name&#34;: &#34;Second name&#34;,</ins>" in diff.text
    rolled = await signed_in.post(
        "/console/recipes/sold-out-alert/rollback",
        data={"csrf": csrf_of(page.text), "version": "1"},
    )
    assert rolled.headers["location"] == "/console/recipes/sold-out-alert?done=rolled-back"
    row = stored(engine, "sold-out-alert")
    assert (row.version, row.document["name"]) == (3, "Tell staff when a product sells out")
    after = await signed_in.get(rolled.headers["location"])
    assert '3 <span class="muted">(current)</span>' in after.text
    missing = await signed_in.get("/console/recipes/sold-out-alert/diff?from=1&to=9")
    assert missing.status_code == 404
    never = await signed_in.post(
        "/console/recipes/sold-out-alert/rollback",
        data={"csrf": csrf_of(page.text), "version": "9"},
    )
    assert never.status_code == 422 and "This recipe has no version 9." in never.text
    assert stored(engine, "sold-out-alert").version == 3


async def test_a_dry_run_names_the_condition_that_said_no(
    client: Client, admin: Headers, signed_in: Client, engine: Engine, make_key: Any
) -> None:
    await add(client, admin)
    missed = await engine.ingest(NewEvent(type="test.stock", payload=product(5)))
    tried = await signed_in.get(
        "/console/recipes/sold-out-alert/test", params={"event_id": missed.event_id}
    )
    assert tried.status_code == 200
    result = tried.text.split('class="dry-result"')[1]
    assert "It would not fire" in result and "<strong>conditions</strong>" in result
    assert "The condition that said no (#1)" in result
    assert "&#34;product.inventory_level&#34;" in result
    sample = await signed_in.get("/console/recipes/sold-out-alert/test")
    assert "the trigger&#39;s sample" in sample.text.split('class="dry-result"')[1]
    unknown = await signed_in.get(
        "/console/recipes/sold-out-alert/test", params={"event_id": "evt_nothing"}
    )
    assert unknown.status_code == 422
    assert "No event of this workspace has the id “evt_nothing”" in unknown.text
    theirs = await engine.ingest(NewEvent(type="test.stock", payload=product(0), workspace="other"))
    foreign = await signed_in.get(
        "/console/recipes/sold-out-alert/test", params={"event_id": theirs.event_id}
    )
    assert foreign.status_code == 422 and 'class="dry-result"' not in foreign.text


async def test_a_test_run_from_the_recipe_page_records_its_writes_and_opens_the_run(
    client: Client, admin: Headers, signed_in: Client, engine: Engine, recorder: Recorder
) -> None:
    await add(client, admin)
    sold_out = await engine.ingest(NewEvent(type="test.stock", payload=product(0)))
    await engine.drain()
    made = len(recorder.calls)  # the event's own run
    page = await signed_in.get("/console/recipes/sold-out-alert")
    assert 'action="/console/recipes/sold-out-alert/test-run"' in page.text
    form = {"csrf": csrf_of(page.text), "event_id": sold_out.event_id}
    started = await signed_in.post("/console/recipes/sold-out-alert/test-run", data=form)
    assert started.status_code == 303
    location = started.headers["location"]
    assert location.startswith("/console/runs/run_") and location.endswith("?done=test")
    await engine.drain()
    assert len(recorder.calls) == made  # test.record writes: recorded as would-do, not made
    run = await signed_in.get(location)
    assert "This is a test run" in run.text
    assert "test: writes were recorded, not made" in run.text and "would_do" in run.text
    in_stock = await engine.ingest(NewEvent(type="test.stock", payload=product(5)))
    refused = await signed_in.post(
        "/console/recipes/sold-out-alert/test-run", data={**form, "event_id": in_stock.event_id}
    )
    assert refused.status_code == 422 and "It would not fire" in refused.text
    unknown = await signed_in.post(
        "/console/recipes/sold-out-alert/test-run", data={**form, "event_id": "evt_nothing"}
    )
    assert unknown.status_code == 422 and "No event of this workspace" in unknown.text


async def test_every_recipe_form_refuses_a_missing_csrf_token(
    client: Client, admin: Headers, signed_in: Client, engine: Engine
) -> None:
    await add(client, admin)
    forms: list[tuple[str, dict[str, str]]] = [
        ("/console/recipes", {"document": YAML.replace("sold-out-alert", "another")}),
        ("/console/recipes/sold-out-alert", {"version": "1", "document": YAML}),
        ("/console/recipes/sold-out-alert/disable", {"reason": "no"}),
        ("/console/recipes/sold-out-alert/enable", {}),
        ("/console/recipes/sold-out-alert/rollback", {"version": "1"}),
        ("/console/recipes/sold-out-alert/test-run", {"event_id": ""}),
    ]
    for path, data in forms:
        forged = await signed_in.post(path, data={**data, "csrf": "forged"})
        assert forged.status_code == 403, path
        assert "This form has expired" in forged.text
        assert (await signed_in.post(path, data=data)).status_code == 403, path
    row = stored(engine, "sold-out-alert")
    assert (row.version, row.enabled) == (1, True)
    with engine.db.read_session() as s:
        assert len(s.exec(select(RecipeRow)).all()) == 1


async def test_a_read_only_session_reads_recipes_but_cannot_change_them(
    app: Any, client: Client, admin: Headers, new_key: Any, engine: Engine
) -> None:
    await add(client, admin)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sous.test") as reader:
        assert (await sign_in(reader, new_key("default", "read"))).status_code == 303
        page = await reader.get("/console/recipes/sold-out-alert")
        assert page.status_code == 200 and "<textarea" not in page.text
        assert "id: sold-out-alert" in page.text
        assert "New recipe" not in (await reader.get("/console/recipes")).text
        refused = await reader.post(
            "/console/recipes/sold-out-alert/disable", data={"csrf": csrf_of(page.text)}
        )
        assert refused.status_code == 403 and "This session may only look" in refused.text
    assert stored(engine, "sold-out-alert").enabled is True


async def test_another_workspaces_recipe_answers_the_not_found_page(
    client: Client, signed_in: Client, engine: Engine, make_key: Any
) -> None:
    await add(client, make_key("other", "admin"))
    for path in (
        "/console/recipes/sold-out-alert",
        "/console/recipes/sold-out-alert/diff?from=1&to=1",
        "/console/recipes/sold-out-alert/test",
    ):
        shown = await signed_in.get(path)
        assert shown.status_code == 404, path
        assert "Page not found" in shown.text
    assert listed((await signed_in.get("/console/recipes")).text) == []
    csrf = csrf_of((await signed_in.get("/console/recipes")).text)
    for path, data in (
        ("/console/recipes/sold-out-alert", {"version": "1", "document": YAML}),
        ("/console/recipes/sold-out-alert/disable", {}),
        ("/console/recipes/sold-out-alert/enable", {}),
        ("/console/recipes/sold-out-alert/rollback", {"version": "1"}),
    ):
        refused = await signed_in.post(path, data={**data, "csrf": csrf})
        assert refused.status_code == 404, path
    theirs = stored(engine, "sold-out-alert", workspace="other")
    assert (theirs.version, theirs.enabled) == (1, True)
