"""The home page: held runs, auto-disabled recipes, recent failures, stores and their health."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from engine import Engine, NewEvent
from engine.store.models import RecipeRow, RunRow, StoreRow
from tests.api.conftest import StoreDouble
from tests.console.conftest import sign_in
from tests.fakes import Recorder

FLOODING: dict[str, Any] = {
    "id": "sold-out-note",
    "name": "Note sold-out products",
    "trigger": {"type": "test.stock"},
    "conditions": [{"<=": [{"var": "product.inventory_level"}, 0]}],
    "actions": [{"id": "note", "use": "test.record", "with": {"message": "sold out"}}],
    "flood": {"max_runs": 1, "per": "1m"},
}
BREAKING: dict[str, Any] = {
    "id": "restock-sync",
    "name": "Sync restocks to the ERP",
    "trigger": {"type": "test.stock"},
    "conditions": [{">=": [{"var": "product.inventory_level"}, 5]}],
    "actions": [{"id": "push", "use": "test.flaky", "with": {"mode": "permanent"}}],
    "auto_disable": {"min_runs": 2, "failure_share": 0.5, "window": "1h"},
}


def stock(level: int) -> dict[str, Any]:
    return {"product": {"id": 9, "name": "Tent", "inventory_level": level}}


async def _trouble(client, admin, engine: Engine, recorder: Recorder) -> None:
    for recipe in (FLOODING, BREAKING):
        made = await client.post("/v1/recipes", json=recipe, headers=admin)
        assert made.status_code == 201, made.text
    recorder.failures["push"] = 10
    for level in (0, 0, 7, 8):
        await engine.ingest(NewEvent(type="test.stock", payload=stock(level)))
        await engine.drain()


async def test_home_shows_held_runs_and_auto_disabled_recipes(
    client, admin, signed_in, engine: Engine, recorder: Recorder
) -> None:
    quiet = await signed_in.get("/console/")
    assert "Nothing needs attention" in quiet.text
    await _trouble(client, admin, engine, recorder)
    with engine.db.read_session() as s:
        held = s.exec(select(RunRow).where(RunRow.status == "held")).one()
        recipe = s.exec(select(RecipeRow).where(RecipeRow.slug == "restock-sync")).one()
    assert recipe.enabled is False and (recipe.disabled_reason or "").startswith("auto-disabled")
    home = await signed_in.get("/console/")
    assert home.status_code == 200
    text = home.text
    assert "Nothing needs attention" not in text
    assert "1 run held" in text and held.id in text
    assert "Switched off by auto-disable" in text and recipe.disabled_reason in text
    assert "1 recipe switched off" in text
    assert "1 recipe failed" in text and "(2 failed runs)" in text
    assert "Sync restocks to the ERP" in text and "Note sold-out products" in text
    assert '<span class="badge bad">2</span>' in text
    assert '<th scope="col">Recipe</th>' in text


async def test_home_shows_stores_and_their_health(
    client, admin, signed_in, container, engine: Engine
) -> None:
    container.stores = StoreDouble(
        {"hooks_active": 3, "hooks_expected": 5},
        health={"hooks_active": 3, "hooks_expected": 5, "quota": {"limit": 450, "left": 0}},
    )
    connected = await client.post(
        "/v1/stores", json={"store_hash": "abc123", "access_token": "good-token"}, headers=admin
    )
    assert connected.status_code == 201, connected.text
    await engine.ingest(NewEvent(type="test.stock", payload=stock(3), store="abc123"))
    home = (await signed_in.get("/console/")).text
    assert "Acme Outdoor" in home and "abc123" in home
    assert "3 of 5" in home
    assert "0 of 450" in home
    assert "webhooks inactive" in home
    assert "<time datetime=" in home


async def test_home_shows_only_the_sessions_workspace(
    client, admin, browser, new_key, engine: Engine, recorder: Recorder, container
) -> None:
    await _trouble(client, admin, engine, recorder)
    with engine.db.session() as s:
        s.add(
            StoreRow(
                id="sto_1",
                workspace_id="default",
                store_hash="defaultstore",
                name="Default's Store",
                api_base_url="http://bc.test/stores/defaultstore",
                access_token_enc="x",
                webhook_secret_enc="x",
                created_at=engine.clock.now(),
            )
        )
        s.commit()
    answer = await sign_in(browser, new_key("other", "admin"))
    assert answer.status_code == 303
    home = (await browser.get("/console/")).text
    assert "other" in home
    for theirs in ("Sync restocks", "Note sold-out", "run_", "Default's Store", "defaultstore"):
        assert theirs not in home.replace("Default&#39;s Store", "Default's Store"), theirs
    assert "Nothing needs attention" in home
