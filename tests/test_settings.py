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


def test_bigcommerce_app_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOUS_BIGCOMMERCE_CLIENT_ID", "abc")
    monkeypatch.setenv("SOUS_BIGCOMMERCE_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("SOUS_BIGCOMMERCE_PUBLIC_BASE_URL", "https://sous.example.com/")
    monkeypatch.setenv("SOUS_BIGCOMMERCE_APP_SCOPES", "store_v2_orders, store_v2_products")
    settings = load_settings()
    assert settings.bigcommerce_client_id == "abc"
    assert settings.bigcommerce_client_secret is not None
    assert settings.bigcommerce_client_secret.get_secret_value() == "s3cret"
    assert settings.bigcommerce_login_url == "https://login.bigcommerce.com"
    assert settings.bigcommerce_api_url == "https://api.bigcommerce.com"
    assert settings.bigcommerce_public_base_url == "https://sous.example.com"
    assert settings.bigcommerce_app_scopes == ["store_v2_orders", "store_v2_products"]
    assert settings.bigcommerce_app_workspace == "store"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8787", "http://localhost:9000", "http://[::1]:8080", "https://x.io"]
)
def test_bigcommerce_urls_are_https_or_loopback(url: str) -> None:
    assert load_settings(bigcommerce_login_url=url).bigcommerce_login_url == url


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("bigcommerce_login_url", "http://login.bigcommerce.com"),
        ("bigcommerce_api_url", "http://10.0.0.5:8080"),
        ("bigcommerce_public_base_url", "http://sous.example.com"),
        ("bigcommerce_api_url", "ftp://api.bigcommerce.com"),
        ("bigcommerce_login_url", "https://user:pw@login.bigcommerce.com"),
    ],
)
def test_plain_http_elsewhere_is_refused(name: str, url: str) -> None:
    with pytest.raises(ValidationError, match=r"loopback|http\(s\)|credentials"):
        load_settings(**{name: url})


def test_the_client_id_and_secret_come_together() -> None:
    with pytest.raises(ValidationError, match="together"):
        load_settings(bigcommerce_client_id="abc")
