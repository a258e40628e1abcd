"""Settings from ``SOUS_*`` environment variables (and command-line flags on top).

Built by :func:`load_settings` when a command starts, never at import time. Outside development,
default secrets are refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SECRET = "dev-only-insecure-key-change-me"  # noqa: S105 - refused outside development
SANDBOX_DATABASE = Path("sous-data") / "sandbox.db"
BIGCOMMERCE_APP_SCOPES = (
    "store_v2_products",
    "store_v2_orders",
    "store_v2_customers",
    "store_inventory",
    "store_v2_content",
    "store_v2_information_read_only",
    "store_locations_read_only",
    "store_channel_settings_read_only",
)
"""The OAuth scopes Sous asks for as a BigCommerce app (its app profile must list the same):
catalog, orders and customers (read and write), stock, storefront scripts (content), store
information, locations and channels (read)."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
"""The database of ``sous serve --sandbox`` (emptied at each start); commands run with
``SOUS_SANDBOX=1`` use it too, so what they make is what the running sandbox sees."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOUS_", env_nested_delimiter="__", extra="ignore")

    env: str = Field(default="development", description="development | production")
    database_url: str = Field(default="sqlite:///sous-data/sous.db")
    sandbox: bool = Field(
        default=False,
        description="use the sandbox's database (sous-data/sandbox.db) unless a URL is given",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=16, ge=1, le=512, description="concurrent runs in this process")
    backlog: int | None = Field(
        default=None, ge=1, description="jobs waiting for a worker before answers are held back"
    )
    backlog_wait: float = Field(
        default=1.0, ge=0, le=30, description="longest an answer is held back, in seconds"
    )
    secret_key: SecretStr = Field(
        default=SecretStr(DEV_SECRET),
        description="encrypts credentials at rest; set it in production",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token for /metrics (without it, only this machine may read them)",
    )
    recipes_dir: Path | None = Field(default=None, description="load recipes from YAML at start")
    max_chain_depth: int = Field(default=5, ge=1, le=50)
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="origins whose pages may call the API; comma-separated or a JSON list",
    )
    max_body_bytes: int = 1_000_000
    outbound_allow_private: bool = Field(
        default=False, description="let http.request reach loopback and private addresses"
    )
    outbound_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="hosts, *.domains, addresses or networks outbound requests may reach; "
        "comma-separated or a JSON list",
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: str = Field(default="none", pattern="^(none|starttls|tls)$")
    smtp_from: str = "sous@localhost"
    staff_email: str = "staff@example.com"
    retention_succeeded_days: float = Field(default=14, ge=0, description="keep successful runs")
    retention_failed_days: float = Field(default=90, ge=0, description="keep failed runs longer")
    retention_events_days: float = Field(default=14, ge=0, description="keep events without runs")
    retention_audit_days: float = Field(
        default=365, ge=0, description="keep the audit log's entries"
    )
    queue: str = Field(default="embedded", pattern="^(embedded|procrastinate)$")
    log_level: str = "info"
    bigcommerce_client_id: str | None = Field(
        default=None, description="the app's client ID (Sous as a BigCommerce single-click app)"
    )
    bigcommerce_client_secret: SecretStr | None = Field(
        default=None, description="the app's client secret; signs the load/uninstall callbacks"
    )
    bigcommerce_login_url: str = Field(
        default="https://login.bigcommerce.com", description="where install codes are exchanged"
    )
    bigcommerce_api_url: str = Field(
        default="https://api.bigcommerce.com", description="the store API base the app uses"
    )
    bigcommerce_public_base_url: str | None = Field(
        default=None,
        description="where BigCommerce reaches Sous: callbacks and webhooks (https in production)",
    )
    bigcommerce_app_scopes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(BIGCOMMERCE_APP_SCOPES),
        description="the scopes of the app profile; an install with others is refused",
    )
    bigcommerce_app_workspace: str = Field(
        default="store",
        max_length=64,
        description="where an installed store goes: store (a workspace of its own), user (the "
        "installing user's) or the name of one workspace",
    )

    @field_validator("bigcommerce_app_scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: object) -> object:
        """``store_v2_orders store_v2_products`` (spaces or commas) or a list."""
        if isinstance(value, str):
            return [s for s in value.replace(",", " ").split() if s]
        return value

    @field_validator("bigcommerce_login_url", "bigcommerce_api_url", "bigcommerce_public_base_url")
    @classmethod
    def _https_unless_loopback(cls, value: str | None) -> str | None:
        """https, or plain http on a loopback host only (tests and the sandbox)."""
        if value is None:
            return None
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if not parts.hostname or parts.scheme not in ("http", "https"):
            raise ValueError(f"{value!r} is not an http(s) URL")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError(
                f"{value!r}: plain http is accepted on a loopback host only; use https"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"{value!r}: no query, fragment or credentials in this URL")
        return url

    @field_validator("outbound_allow_hosts", "cors_origins", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        """``erp.lan,10.20.0.0/16`` or ``["erp.lan"]`` from the environment; a list as is."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"not a JSON list ({exc.msg}); write the values comma-separated instead, "
                    "e.g. erp.lan,api.example.com"
                ) from None
        return [h.strip() for h in text.split(",") if h.strip()]

    @model_validator(mode="after")
    def _sandbox_database(self) -> Settings:
        if self.sandbox and "database_url" not in self.model_fields_set:
            self.database_url = sandbox_database_url()
        return self

    @model_validator(mode="after")
    def _app_credentials_together(self) -> Settings:
        if (self.bigcommerce_client_id is None) != (self.bigcommerce_client_secret is None):
            raise ValueError(
                "set SOUS_BIGCOMMERCE_CLIENT_ID and SOUS_BIGCOMMERCE_CLIENT_SECRET together"
            )
        return self

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.env != "development" and self.secret_key.get_secret_value() == DEV_SECRET:
            raise ValueError(
                "SOUS_SECRET_KEY must be set outside development (SOUS_ENV=production)"
            )
        return self


def sandbox_database_url() -> str:
    return f"sqlite:///{SANDBOX_DATABASE}"


def load_settings(**overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)  # type: ignore[arg-type]
