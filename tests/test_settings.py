"""Settings from the environment: list settings take a plain comma-separated value or JSON."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sous.settings import load_settings


@pytest.mark.parametrize(
    "value",
    [
        "https://a.example,https://b.example",
        " https://a.example , https://b.example ",
        '["https://a.example", "https://b.example"]',
    ],
)
def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SOUS_CORS_ORIGINS", value)
    assert load_settings().cors_origins == ["https://a.example", "https://b.example"]


def test_cors_origins_with_broken_json_say_how_to_write_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOUS_CORS_ORIGINS", '["https://a.example"')
    with pytest.raises(ValidationError, match="comma-separated"):
        load_settings()
