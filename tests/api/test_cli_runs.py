"""``sous runs replay|release|discard`` against the API in process: it counts first, asks,
then goes page by page with a progress line, and reports what it did."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest

from engine import Engine
from engine.model.events import NewEvent
from sous.cli import build_parser
from sous.cli_runs import body_of, bulk, cmd_runs
from tests.api.conftest import product, recipe
from tests.fakes import Recorder

FAILING = [{"id": "boom", "use": "test.flaky", "with": {"mode": "permanent"}}]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def failed_runs(client: httpx.AsyncClient, admin: dict[str, str], engine: Engine) -> None:
    made = await client.post(
        "/v1/recipes", json=recipe(conditions=[], actions=FAILING), headers=admin
    )
    assert made.status_code == 201
    for n in range(5):
        await engine.ingest(NewEvent(type="test.stock", payload=product(0), dedup_key=f"e{n}"))
    await engine.drain()


async def test_replay_counts_asks_and_goes_page_by_page(
    app: Any, admin: dict[str, str], engine: Engine, recorder: Recorder, client: httpx.AsyncClient
) -> None:
    recorder.failures["boom"] = 1_000
    await failed_runs(client, admin, engine)
    args = build_parser().parse_args(
        ["runs", "replay", "--recipe", "sold-out-alert", "--page", "2"]
    )
    body = body_of(args, engine.clock.now())
    asked: list[int] = []

    def refuse(count: int) -> bool:
        asked.append(count)
        return False

    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=admin) as http:
        status, totals = await bulk(http, args, body, refuse, Terminal())
        assert (status, asked, totals["done"]) == (2, [5], 0)  # counted, asked, nothing done
        err = Terminal()
        status, totals = await bulk(http, args, body, lambda _: True, err)
    assert status == 0
    assert totals["matched"] == 5 and totals["done"] == 5 and len(totals["made"]) == 5
    assert "replayed 2 of 5 runs" in err.getvalue()  # the progress line, page by page
    assert "replayed 5 of 5 runs" in err.getvalue()


def test_times_are_read_as_times_or_durations_ago(engine: Engine) -> None:
    args = build_parser().parse_args(
        ["runs", "release", "--since", "2d", "--until", "2026-11-27T00:00:00Z", "--yes"]
    )
    body = body_of(args, engine.clock.now())
    assert body["until"] == "2026-11-27T00:00:00+00:00"
    assert body["since"] < body["until"]
    assert "from" not in body  # replay's options only for replay


def test_an_api_key_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOUS_API_KEY", raising=False)
    args = build_parser().parse_args(["runs", "discard", "--yes"])
    assert cmd_runs(args) == 2
