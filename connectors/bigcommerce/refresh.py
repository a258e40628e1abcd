"""Re-reading an event's resource after a durable wait (``core.wait`` with ``recheck: true``).

A run that waited (for a day, say, before e-mailing "out of stock") checks that its recipe still
applies once the wait is over. These hooks give the engine the event's payload as the store
holds it now: the product (and variant) for ``bigcommerce.product.*`` and
``bigcommerce.variant.*`` events, with ``current``/``delta`` moved to today's stock level for
stock events; the order and its lines for ``bigcommerce.order.*`` events. A resource the store no
longer has gives ``None``: the run ends ``skipped``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from connectors.bigcommerce.normalize_orders import get_order
from connectors.bigcommerce.payloads import as_int, order_payload, product_payload
from connectors.bigcommerce.stores import BigCommerceStores, StoreHandle
from engine import Event, Refetchers


async def _store(stores: BigCommerceStores, event: Event) -> StoreHandle:
    if event.store is None:
        raise LookupError(f"event {event.id} names no store")
    return await stores.get(event.workspace, event.store)


def _id(payload: dict[str, Any], key: str) -> int | None:
    resource = payload.get(key)
    return as_int(resource.get("id")) if isinstance(resource, dict) else None


async def product(stores: BigCommerceStores, event: Event) -> dict[str, Any] | None:
    """The product event's payload with the product (and its variant) as they are now."""
    payload = dict(event.payload)
    pid = _id(payload, "product")
    if pid is None:
        return payload
    found = await (await _store(stores, event)).reader.get(pid)
    if found is None:
        return None
    fresh = product_payload(found)
    payload["product"] = fresh
    stock: dict[str, Any] = fresh
    vid = _id(payload, "variant")
    if vid is not None:
        variant = next(
            (v for v in fresh["variants"] if isinstance(v, dict) and as_int(v.get("id")) == vid),
            None,
        )
        if variant is None:
            return None
        payload["variant"] = stock = variant
    if "current" in payload:
        level = as_int(stock.get("inventory_level")) or 0
        payload["current"] = level
        payload["delta"] = level - (as_int(payload.get("previous")) or 0)
    return payload


async def order(stores: BigCommerceStores, event: Event) -> dict[str, Any] | None:
    """The order event's payload with the order and its lines as they are now."""
    payload = dict(event.payload)
    oid = _id(payload, "order")
    if oid is None:
        return payload
    found, lines = await get_order((await _store(stores, event)).client, oid)
    if found is None:
        return None
    payload["order"] = order_payload(found, lines)
    return payload


def install(refetchers: Refetchers, stores: BigCommerceStores) -> None:
    refetchers.add("bigcommerce.product.*", partial(product, stores))
    refetchers.add("bigcommerce.variant.*", partial(product, stores))
    refetchers.add("bigcommerce.order.*", partial(order, stores))
