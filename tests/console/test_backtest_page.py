"""The backtest page: a saved recipe over the events received in a range, through the console
signed in as a merchant; bad input answers with the form and what was wrong."""

from __future__ import annotations

from datetime import timedelta

import httpx

from engine import Engine, NewEvent
from engine.clock import ManualClock
from tests.api.conftest import product, recipe


async def test_the_page_backtests_a_saved_recipe_over_a_range(
    signed_in: httpx.AsyncClient, engine: Engine, clock: ManualClock
) -> None:
    since = (clock.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    for level in (0, 4, 0, 7):
        await engine.ingest(NewEvent(type="test.stock", payload=product(level)))
    engine.recipes.create("default", recipe(enabled=False))
    empty = await signed_in.get("/console/backtest")
    assert empty.status_code == 200
    assert 'value="sold-out-alert"' in empty.text
    answer = await signed_in.get(
        "/console/backtest", params={"recipe": "sold-out-alert", "since": since}
    )
    assert answer.status_code == 200, answer.text
    assert "would have fired 2 of 4 times" in answer.text
    assert "actual: 4" in answer.text  # the first refusal explained
    assert "Cat Eye Sunglasses" in answer.text


async def test_bad_input_is_named_on_the_page(signed_in: httpx.AsyncClient, engine: Engine) -> None:
    engine.recipes.create("default", recipe())
    answer = await signed_in.get(
        "/console/backtest", params={"recipe": "sold-out-alert", "since": "yesterday"}
    )
    assert answer.status_code == 422
    assert "is not a time" in answer.text
    unknown = await signed_in.get("/console/backtest", params={"recipe": "nope"})
    assert unknown.status_code == 422
    assert "No recipe" in unknown.text


async def test_the_page_needs_a_session(app: object) -> None:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://sous.test") as http:
        answer = await http.get("/console/backtest")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/sign-in")
