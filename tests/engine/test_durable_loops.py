"""Loops: recipes that trigger each other through their own writes stop, and the stopped run
names the chain — once with custom events (core.emit), once through the store simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from engine.clock import ManualClock
from engine.store.db import Database
from tests.connectors.bigcommerce.harness import Live, Servers, caused, live_rig, servers_up
from tests.engine.test_durable_support import Probe, add, fire, registry_for, running, runs
from tests.fakes import Recorder

pytestmark = pytest.mark.asyncio(loop_scope="module")

TOUCH = """\
id: touch-{name}
name: On product updated, update the product
trigger: {{type: bigcommerce.product.updated}}
actions:
  - use: bigcommerce.product.update
    with:
      product_id: "{{{{ product.id }}}}"
      {field}: "{name} {{{{ event.id }}}}"
"""


async def test_recipes_emitting_each_others_events_stop_with_the_chain_named(
    db: Database, clock: ManualClock, recorder: Recorder
) -> None:
    async with running(db, registry_for(Probe(), recorder), clock) as engine:
        ping = add(
            engine,
            {
                "id": "ping",
                "trigger": {"type": "custom.ping"},
                "actions": [{"use": "core.emit", "with": {"name": "pong"}}],
            },
        )
        pong = add(
            engine,
            {
                "id": "pong",
                "trigger": {"type": "custom.pong"},
                "actions": [{"use": "core.emit", "with": {"name": "ping"}}],
            },
        )
        await fire(engine, {}, type_="custom.ping")
        await engine.drain()
        everything = runs(engine)
        assert {r.recipe_uid for r in everything} == {ping, pong}
        [stopped] = [r for r in everything if r.status == "loop_stopped"]
        assert [r.status for r in everything].count("succeeded") == engine.settings.max_depth + 1
        assert stopped.depth == engine.settings.max_depth + 1
        assert (
            stopped.status_reason
            == "chain deeper than 5: ping → pong → ping → pong → ping → pong → ping"
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers() -> AsyncIterator[Servers]:
    async with servers_up() as up:
        yield up


@pytest_asyncio.fixture(loop_scope="module")
async def live(servers: Servers, tmp_path: Path, recorder: Recorder) -> AsyncIterator[Live]:
    async with live_rig(servers, tmp_path, recorder) as rig:
        yield rig


async def test_on_product_updated_update_the_product_through_the_simulator(
    live: Live, tmp_path: Path
) -> None:
    own = live.load(tmp_path, TOUCH.format(name="a", field="preorder_message"))
    cat = live.product("Cat Eye Sunglasses")
    live.clock.advance(1)
    await live.store_api("PUT", f"/v3/catalog/products/{cat.id}", json={"is_featured": False})
    await live.settle()
    assert [r.status for r in live.runs(own)] == ["succeeded"]  # its own write does not re-fire it
    echo = live.events("bigcommerce.product.updated")[-1]
    [decision] = live.matches(echo.id)
    assert (decision.stage, decision.matched) == ("loop", False)
    assert decision.reason is not None and decision.reason["run_id"] == live.runs(own)[0].id
    other = live.load(tmp_path, TOUCH.format(name="b", field="availability_description"))
    live.clock.advance(1)
    await live.store_api("PUT", f"/v3/catalog/products/{cat.id}", json={"is_featured": True})
    await live.settle(limit=20)
    stopped = [r for r in live.runs(own) + live.runs(other) if r.status == "loop_stopped"]
    assert stopped, "two recipes updating each other must stop"
    reason = stopped[0].status_reason or ""
    assert reason.startswith(f"chain deeper than {live.engine.settings.max_depth}: ")
    assert "touch-a → touch-b → touch-a" in reason or "touch-b → touch-a → touch-b" in reason
    chain = caused(
        next(
            e
            for e in live.events("bigcommerce.product.updated")
            if e.id == _event_of(live, stopped[0].id)
        )
    )
    assert chain is not None and chain.depth > live.engine.settings.max_depth


def _event_of(live: Live, run_id: str) -> str:
    return next(r.event_id for r in live.runs() if r.id == run_id)
