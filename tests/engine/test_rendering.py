from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.authoring.rendering import Renderer
from engine.errors import RenderError
from engine.model.durations import parse_duration

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(lambda: NOW)


def test_native_types_survive(renderer: Renderer) -> None:
    ctx = {"product": {"id": 123, "price": 9.5, "tags": ["a"], "ok": True}}
    assert renderer.render("{{ product.id }}", ctx) == 123
    assert renderer.render("{{ product.price }}", ctx) == 9.5
    assert renderer.render("{{ product.tags }}", ctx) == ["a"]
    assert renderer.render("{{ product.ok }}", ctx) is True
    assert renderer.render("id {{ product.id }}", ctx) == "id 123"
    assert renderer.render({"a": ["{{ product.id }}", 4]}, ctx) == {"a": [123, 4]}


def test_helpers(renderer: Renderer) -> None:
    assert renderer.render("{{ (now() + days(14)) | date }}", {}) == "2026-12-11"
    assert renderer.render("{{ (now() + hours(2)) | date('%H:%M') }}", {}) == "11:00"
    assert renderer.render("{{ duration('1h30m').total_seconds() }}", {}) == 5400.0
    assert parse_duration("14d") == timedelta(days=14)
    assert parse_duration(90) == timedelta(seconds=90)
    with pytest.raises(ValueError):
        parse_duration("soon")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ product.__init__.__globals__ }}",
        "{{ [].__class__.__base__ }}",
        "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ product.update({'id': 1}) }}",
    ],
)
def test_injection_attempts_fail_clearly(renderer: Renderer, source: str) -> None:
    with pytest.raises(RenderError) as info:
        renderer.render(source, {"product": {"id": 1}}, "with.message")
    assert info.value.path == "with.message"


def test_missing_names_are_errors(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="'product' is undefined"):
        renderer.render("{{ product.id }}", {}, "with.product_id")
