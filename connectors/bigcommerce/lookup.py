"""Store lookups for pickers: the products, variants, categories, customer groups and order
statuses of a store whose name (or SKU) matches what a merchant typed, to choose an id from.

Each lookup is one bounded request through the store's client (its quota budget and retries):
at most :data:`MAX_CHOICES` items, the fields a picker shows and nothing more. Order statuses and
customer groups come from a :class:`~connectors.bigcommerce.stores.StoreHandle`'s cache when one
is given (they rarely change), filtered here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from connectors.bigcommerce.client import BigCommerceClient

KINDS = ("product", "variant", "category", "customer_group", "order_status")
MAX_CHOICES = 50
MAX_QUERY = 100


@dataclass(frozen=True)
class Choice:
    """One item a picker offers: its id, a name, and a detail (a SKU, a parent, ...)."""

    id: int
    label: str
    detail: str = ""


Names = Callable[[], Awaitable[dict[int, str]]]
"""A cached ``id → name`` list (``StoreHandle.customer_groups``, ``.order_statuses``)."""


def _data(body: Any) -> list[dict[str, Any]]:
    data = body.get("data") if isinstance(body, dict) else body
    return [item for item in data or [] if isinstance(item, dict)] if isinstance(data, list) else []


async def _products(client: BigCommerceClient, query: str, limit: int) -> list[Choice]:
    params: dict[str, Any] = {"limit": limit, "sort": "name", "include_fields": "name,sku"}
    if query.isdigit():
        params["id:in"] = query
    elif query:
        params["keyword"] = query
    body = await client.request("GET", "/catalog/products", params=params)
    return [
        Choice(int(p["id"]), str(p.get("name", "")), str(p.get("sku") or "")) for p in _data(body)
    ]


async def _variants(client: BigCommerceClient, query: str, limit: int) -> list[Choice]:
    params: dict[str, Any] = {"limit": limit}
    if query.isdigit():
        params["product_id:in"] = query
    elif query:
        params["sku"] = query
    body = await client.request("GET", "/catalog/variants", params=params)
    return [
        Choice(int(v["id"]), str(v.get("sku") or v["id"]), f"product {v.get('product_id', '')}")
        for v in _data(body)
    ]


async def _categories(client: BigCommerceClient, query: str, limit: int) -> list[Choice]:
    params: dict[str, Any] = {"limit": limit, "sort": "name"}
    if query:
        params["name:like"] = query
    body = await client.request("GET", "/catalog/categories", params=params)
    return [Choice(int(c["id"]), str(c.get("name", "")), "") for c in _data(body)]


async def _named(
    client: BigCommerceClient, path: str, cached: Names | None, query: str, limit: int
) -> list[Choice]:
    if cached is not None:
        names = await cached()
    else:
        body = await client.request("GET", path, version="v2", params={"limit": 250})
        names = {
            int(r["id"]): str(r.get("custom_label") or r.get("name") or r["id"])
            for r in _data(body)
        }
    wanted = query.lower()
    found = [
        Choice(key, name)
        for key, name in sorted(names.items())
        if not wanted or wanted in name.lower() or wanted == str(key)
    ]
    return found[:limit]


async def lookup(
    client: BigCommerceClient,
    kind: str,
    query: str = "",
    *,
    limit: int = 20,
    groups: Names | None = None,
    statuses: Names | None = None,
) -> list[Choice]:
    """The store's items of ``kind`` (one of :data:`KINDS`) matching ``query`` (a name or SKU
    fragment, or an id), at most ``limit`` of them (≤ :data:`MAX_CHOICES`); ``ValueError`` for
    an unknown kind. The store's errors are the client's."""
    limit = max(1, min(limit, MAX_CHOICES))
    query = query.strip()[:MAX_QUERY]
    if kind == "product":
        return await _products(client, query, limit)
    if kind == "variant":
        return await _variants(client, query, limit)
    if kind == "category":
        return await _categories(client, query, limit)
    if kind == "customer_group":
        return await _named(client, "/customer_groups", groups, query, limit)
    if kind == "order_status":
        return await _named(client, "/order_statuses", statuses, query, limit)
    raise ValueError(f"no lookup for {kind!r} (one of {', '.join(KINDS)})")
