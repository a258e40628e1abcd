"""What the backorder connector needs from the process: settings and a client per store.

``BackorderSettings`` holds the defaults an assignment falls back on and the connector's
options; pass one to :class:`~connectors.backorder.service.Backorders` to change them.

``ClientProvider`` is how the connector reaches a store: ``await provider.client(workspace,
store)`` returns the store's :class:`BigCommerceClient` (shared, not closed by the caller).
:class:`StoresClientProvider` adapts the BigCommerce connector's ``BigCommerceStores``.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from connectors.bigcommerce.client import BigCommerceClient
from engine import NotFoundError, PermanentError, Services


class BackorderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead_time_days: int = Field(
        default=14,
        ge=0,
        le=365,
        description="days from today to ship when only incoming stock is known",
    )
    release_on_cancel: bool = Field(
        default=True, description="a cancelled or refunded order gives its backordered units back"
    )
    reserve_on_restock: bool = Field(
        default=True, description="at restock, take the waiting units off the new stock level"
    )
    marker_field: str | None = Field(
        default="sous_backorder",
        max_length=250,
        description="custom field marking products Sous manages (None: no marker)",
    )
    default_message: str = Field(default="On backorder: ships by %%DATE%%", max_length=255)
    undated_message: str = Field(
        default="On backorder: ships as soon as it is back in stock", max_length=255
    )
    sold_out_message: str = Field(
        default="Sold out", max_length=255, description="purchasing_disabled_message of variants"
    )
    date_format: str = Field(default="%B %d, %Y", description="how %%DATE%% reads in messages")
    storefront_script: bool = Field(
        default=True,
        description="show the backorder button, message and cart message on the storefront "
        "through a script (Scripts API)",
    )
    button_text: str = Field(
        default="Backorder", max_length=100, description="the add-to-cart button's text"
    )
    cart_message: str = Field(
        default="Some items in your cart are on backorder: they ship as soon as they are in stock",
        max_length=255,
        description="shown on the cart page when it holds a backordered product",
    )
    check_interval: float = Field(default=300.0, gt=0, description="seconds between checks")


class ClientProvider(Protocol):
    async def client(self, workspace: str, store: str) -> BigCommerceClient:
        """The client of ``store`` (a store hash) in ``workspace``; NotFoundError if unknown."""
        ...


class StoresClientProvider:
    """Clients from the BigCommerce connector's ``BigCommerceStores`` service."""

    def __init__(self, stores: object) -> None:
        self._stores = stores

    async def client(self, workspace: str, store: str) -> BigCommerceClient:
        handle = await self._stores.get(workspace, store)  # type: ignore[attr-defined]
        found: BigCommerceClient = handle.client
        return found


def provider_of(services: Services) -> ClientProvider:
    """The registered :class:`ClientProvider`, else one over ``BigCommerceStores``."""
    found = services.find(ClientProvider)  # type: ignore[type-abstract]
    if found is not None:
        return found
    try:
        from connectors.bigcommerce.stores import BigCommerceStores
    except ImportError:  # pragma: no cover - the BigCommerce connector ships with Sous
        BigCommerceStores = None  # type: ignore[assignment,misc]
    stores = services.find(BigCommerceStores) if BigCommerceStores is not None else None
    if stores is None:
        raise LookupError("no ClientProvider or BigCommerceStores is configured in this process")
    return StoresClientProvider(stores)


async def client_for(
    provider: ClientProvider, workspace: str, store: str | None
) -> BigCommerceClient:
    if not store:
        raise PermanentError("the event names no store: set `store` to a store hash")
    try:
        return await provider.client(workspace, store)
    except NotFoundError:
        raise PermanentError(f"store {store!r} is not connected to this workspace") from None
