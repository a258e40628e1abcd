"""Trigger specs (samples match their payload models) and ETA rules."""

from __future__ import annotations

from datetime import date

import pytest

from connectors.backorder import CONNECTOR, eta
from engine.registry import Registry


@pytest.mark.parametrize("spec", CONNECTOR.triggers, ids=lambda s: s.type)
def test_samples_match_their_payload_models(spec) -> None:
    assert spec.payload is not None
    spec.payload.model_validate(spec.sample)
    schema = spec.payload.model_json_schema()
    assert schema["type"] == "object"
    assert set(spec.sample) <= set(schema["properties"])


def test_the_connector_registers() -> None:
    registry = Registry([CONNECTOR])
    assert sorted(registry.triggers) == [
        "backorder.assigned",
        "backorder.back_in_stock_date_reached",
        "backorder.limit_reached",
        "backorder.order_eta_changed",
        "backorder.ordered",
        "backorder.restocked",
        "backorder.unassigned",
        "backorder.updated",
    ]
    assert sorted(registry.actions) == [
        "backorder.assign",
        "backorder.unassign",
        "backorder.update",
    ]
    assert all(a.writes for a in CONNECTOR.actions)


def test_eta_sources() -> None:
    today = date(2026, 11, 27)
    dated = eta.compute(
        today=today, back_in_stock_date=date(2026, 12, 11), incoming_quantity=5, lead_time_days=3
    )
    assert (dated.day, dated.source) == (date(2026, 12, 11), "back_in_stock_date")
    incoming = eta.compute(
        today=today, back_in_stock_date=None, incoming_quantity=5, lead_time_days=3
    )
    assert (incoming.day, incoming.source) == (date(2026, 11, 30), "incoming_stock")
    none = eta.compute(today=today, back_in_stock_date=None, incoming_quantity=0, lead_time_days=3)
    assert (none.day, none.source) == (None, "none")


def test_messages() -> None:
    day = date(2026, 12, 11)
    assert eta.render("Ships by %%DATE%%", day, "%d %b %Y") == "Ships by 11 Dec 2026"
    assert eta.render("Ships soon", day, "%d %b %Y") == "Ships soon"
    assert eta.render("Ships by %%DATE%%", None, "%d %b %Y") == "Ships by %%DATE%%"
    assert eta.release_datetime(day) == "2026-12-11T00:00:00+00:00"
    assert eta.check("Ships by %%DATE%%", None) is not None
    assert eta.check("Ships by %%DATE%%", day) is None
    assert eta.message_for("", day, "dated", "undated") == "dated"
    assert eta.message_for("", None, "dated", "undated") == "undated"
    assert eta.message_for("mine", None, "dated", "undated") == "mine"
