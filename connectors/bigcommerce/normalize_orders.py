"""Normalisation of order, customer and shipment deliveries (products and variants are in
``normalize.py``, which routes here).

An order is fetched with its lines (``GET /v2/orders/{id}`` and ``/products``). Its status is
kept in a snapshot: ``statusUpdated`` deliveries give the previous and new status ids (named from
the cached ``/v2/order_statuses``); any other delivery or poll that finds the status changed
since the snapshot reports the change too, with the same dedup key. The snapshot also keeps the
order's and each customer's watched fields, so ``order.updated`` and ``customer.updated`` carry
``changed`` and ``previous`` (``changes.py``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from connectors.bigcommerce.changes import (
    CUSTOMER_FIELDS,
    ORDER_FIELDS,
    changes as what_changed,
    watched,
)
from connectors.bigcommerce.client import BigCommerceClient
from connectors.bigcommerce.errors import NotFound
from connectors.bigcommerce.models import Snapshot
from connectors.bigcommerce.payloads import as_int as _int, digest, order_payload, shipment_payload
from engine import Job, NewEvent

if TYPE_CHECKING:
    from connectors.bigcommerce.normalize import Normalizer, Raw


Read = tuple[dict[str, Any] | None, list[dict[str, Any]]]


async def get_order(client: BigCommerceClient, oid: int) -> Read:
    """The order and its lines, or ``(None, [])`` if the store has no such order."""
    try:
        found = await client.get_order(oid)
    except NotFound:
        return None, []
    return found, await client.get_order_products(oid) if isinstance(found, dict) else []


async def read_order(n: Normalizer, raw: Raw, oid: int) -> Read:
    """The order and its lines as read after this delivery arrived. An order's deliveries come
    in bunches (created, statusUpdated, updated): one read started after a delivery was
    received, even one still on its way, serves it."""
    key = (raw.store.id, oid)
    reads = n.order_reads
    hit = reads.get(key)
    if hit is None or hit[0] <= raw.event.received_at or (hit[1].done() and hit[1].exception()):
        hit = (n.engine.clock.now(), asyncio.ensure_future(get_order(raw.store.client, oid)))
        reads[key] = hit
        hit[1].add_done_callback(lambda t: t.cancelled() or t.exception())
        while len(reads) > 1000:
            del reads[next(iter(reads))]
    else:
        n.count("reads_reused")
    return await asyncio.shield(hit[1])


async def order(n: Normalizer, raw: Raw, job: Job) -> None:
    oid = _int(raw.data.get("id"))
    found, lines = await read_order(n, raw, oid) if oid is not None else (None, [])
    if not isinstance(found, dict) or oid is None:
        await n.commit(job, [], {})
        return
    statuses = await raw.store.order_statuses()
    key = (raw.store.id, "order", oid)
    async with n.locks.hold(key):
        snap = n.snapshots.get(key)
        order = order_payload(found, lines)
        stamp = str(found.get("date_modified") or "")
        current = _int(found.get("status_id"))
        fields = watched(order, ORDER_FIELDS)
        caused = n.attribute(raw, ("order",), oid)
        events: list[NewEvent] = []
        if raw.scope == "store/order/created":
            events.append(
                n.new_event(raw, "order.created", {"order": order}, f"order:{oid}:created")
            )
        elif raw.scope == "store/order/updated":
            key_ = f"order:{oid}:updated:{stamp}:{digest(found)}"
            updated = {"order": order, **what_changed(snap.fields if snap else None, fields)}
            events.append(n.new_event(raw, "order.updated", updated, key_, caused))
        elif raw.scope == "store/order/refund/created":
            refund = raw.data.get("refund") if isinstance(raw.data.get("refund"), dict) else {}
            refund_id = _int((refund or {}).get("refund_id"))
            refunded = {"order": order, "refund_id": refund_id}
            key_ = f"order:{oid}:refund:{refund_id}"
            events.append(n.new_event(raw, "order.refunded", refunded, key_))
        change = raw.data.get("status") if isinstance(raw.data.get("status"), dict) else None
        before, after = None, current
        if change is not None:
            before, after = (
                _int(change.get("previous_status_id")),
                _int(change.get("new_status_id")),
            )
        elif snap is not None and snap.status_id is not None:
            before = snap.status_id
        if before is not None and after is not None and before != after:
            payload: dict[str, Any] = {
                "order": order,
                "previous_status_id": before,
                "previous_status": statuses.get(before, str(before)),
                "status_id": after,
                "status": statuses.get(after, str(after)),
            }
            key_ = f"order:{oid}:status:{before}>{after}:{stamp}"
            events.append(n.new_event(raw, "order.status_changed", payload, key_, caused))
        now = Snapshot(status_id=current, stamp=stamp, fields=fields)
        await n.commit(job, events, {key: now} if now != snap else {})


async def customer(n: Normalizer, raw: Raw, job: Job) -> None:
    cid = _int(raw.data.get("id"))
    found = await raw.store.client.get_customers([cid]) if cid is not None else []
    if not found or cid is None:
        await n.commit(job, [], {})
        return
    key = (raw.store.id, "customer", cid)
    async with n.locks.hold(key):
        customer = found[0]
        snap = n.snapshots.get(key)
        fields = watched(customer, CUSTOMER_FIELDS)
        if raw.scope.endswith("created"):
            event = n.new_event(
                raw, "customer.created", {"customer": customer}, f"customer:{cid}:created"
            )
        else:
            caused = n.attribute(raw, ("customer",), cid)
            ref = f"customer:{cid}:updated:{customer.get('date_modified')}:{digest(customer)}"
            payload = {"customer": customer, **what_changed(snap.fields if snap else None, fields)}
            event = n.new_event(raw, "customer.updated", payload, ref, caused)
        now = Snapshot(stamp=str(customer.get("date_modified") or ""), fields=fields)
        await n.commit(job, [event], {key: now} if now != snap else {})


async def shipment(n: Normalizer, raw: Raw, job: Job) -> None:
    sid, oid = (
        _int(raw.data.get("id")),
        _int(raw.data.get("orderId") or raw.data.get("order_id")),
    )
    events: list[NewEvent] = []
    if sid is not None and oid is not None:
        try:
            path = f"/orders/{oid}/shipments/{sid}"
            found = await raw.store.client.request("GET", path, version="v2")
        except NotFound:
            found = None
        if isinstance(found, dict):
            payload = {"shipment": shipment_payload(found), "order_id": oid}
            events.append(n.new_event(raw, "shipment.created", payload, f"shipment:{sid}:created"))
    await n.commit(job, events, {})
