"""Reactions that are not recipe steps: orders feed the ledger, stock ends or starts
backorders, and back-in-stock dates switch them off.

* :func:`on_order` — an order (the ``order`` object of ``bigcommerce.order.created``,
  ``.updated``, ``.status_changed`` or ``.refunded``) is booked, shipped or given back; a limit
  used up switches the backorder off (``backorder.limit_reached``), units given back may switch
  it on again (``backorder.updated``, reason ``reopened``); an order with backordered units
  sends ``backorder.ordered``.
* :func:`~connectors.backorder.stock.on_stock` (re-exported here) — stock that reached zero
  switches an ``armed`` backorder on; stock back ends it (``backorder.restocked``).
* :func:`check_dates` — assignments whose back-in-stock date has come are switched off
  (``backorder.back_in_stock_date_reached``), on the service's clock.
* :func:`reconcile` — every product Sous manages is read in batches (``id:in``): those whose
  stock crossed zero go through :func:`on_stock` (variants of an untracked product fire no
  stock webhooks, so this is how their restock is noticed), and those that differ from what
  their assignments say are written again (a write that failed, a change made meanwhile).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from sqlmodel import Session

from engine import CausedBy

from . import events as ev, ledger, storefront
from .ledger import Booking, LineIn, OrderIn
from .models import ACTIVE, ARMED, CLOSED, BackorderAssignmentRow
from .service import Backorders, Emit
from .stock import on_stock

__all__ = ["check_dates", "on_order", "on_stock", "order_in", "reconcile"]

log = logging.getLogger("sous.backorder")


def _when(value: Any, default: datetime) -> datetime:
    if isinstance(value, datetime):
        found = value
    elif isinstance(value, str) and value:
        try:
            found = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                found = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return default
    else:
        return default
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def order_in(order: dict[str, Any], lines: list[dict[str, Any]], now: datetime) -> OrderIn:
    """An :class:`OrderIn` from a v2 order and its order products (raw or normalised)."""
    parsed = tuple(
        LineIn(
            int(li.get("product_id") or 0),
            int(li.get("variant_id") or 0),
            int(li.get("quantity") or 0),
            int(li.get("quantity_refunded") or 0),
        )
        for li in lines
        if li.get("product_id")
    )
    created = _when(order.get("date_created"), now)
    billing = order.get("billing_address")
    billing = billing if isinstance(billing, dict) else {}
    email = str(billing.get("email") or "").strip()[:254] or None
    name = " ".join(str(billing.get(k) or "").strip() for k in ("first_name", "last_name"))
    return OrderIn(
        int(order["id"]),
        int(order.get("status_id") or 0),
        created,
        parsed,
        customer_email=email,
        customer_name=name.strip()[:200] or None,
    )


async def on_order(
    service: Backorders,
    workspace: str,
    store: str,
    order: dict[str, Any],
    *,
    emit: Emit,
    caused_by: CausedBy | None = None,
) -> Booking:
    """Apply one order to the ledger and react; ``order["products"]`` is fetched when absent."""
    order_id = int(order["id"])

    def relevant(s: Session) -> bool:
        return bool(ledger.live(s, workspace, store)) or bool(
            ledger.order_lines(s, workspace, store, order_id)
        )

    if not ledger.read(service.db, relevant):
        return Booking()
    lines = order.get("products")
    if not isinstance(lines, list):
        client = await service.client(workspace, store)
        lines = await client.get_order_products(order_id)
    found = order_in(order, lines, service.clock.now())
    booking = await ledger.write(
        service.db, lambda s: ledger.book_order(s, workspace, store, found, service.clock.now())
    )
    if booking.booked:
        await _send_ordered(service, workspace, store, found, booking, emit, caused_by)
    for row in booking.reached:
        await service.send_limit(row, workspace, store, order_id, emit)
    for row in booking.reopened:
        body = {**ev.base(row, service.settings), "changes": ["status"], "reason": "reopened"}
        dedup = ev.key(workspace, store, row.id, "reopened", row.closures)
        await service.send(emit, ev.UPDATED, workspace, store, body, dedup, caused_by)
    for product_id in sorted(booking.products):
        async with service.lock(workspace, store, product_id):
            await service.sync(await service.client(workspace, store), workspace, store, product_id)
    return booking


async def _send_ordered(
    service: Backorders,
    workspace: str,
    store: str,
    order: OrderIn,
    booking: Booking,
    emit: Emit,
    caused_by: CausedBy | None,
) -> None:
    lines = [
        ev.ordered_line(li, booking.assignments[li.assignment_id], service.settings)
        for li in booking.booked
    ]
    etas = [li.eta for li in lines if li.eta is not None]
    body = {
        "order": {
            "id": order.id,
            "status_id": order.status_id,
            "date_created": order.created_at.isoformat(),
        },
        "lines": [li.model_dump(mode="json") for li in lines],
        "units_backordered": sum(li.backordered for li in lines),
        "eta": max(etas).isoformat() if etas else None,
    }
    dedup = ev.key(workspace, store, "order", order.id, "ordered")
    await service.send(emit, ev.ORDERED, workspace, store, body, dedup, caused_by)


async def check_dates(service: Backorders, *, emit_for: Any) -> list[str]:
    """Switch off every assignment whose back-in-stock date has come; returns their ids.
    ``emit_for(workspace)`` gives the emit function for a workspace."""
    today = service.today()
    due = ledger.read(service.db, lambda s: ledger.due_dates(s, today))
    closed: list[str] = []
    for workspace, store, product_id in sorted(
        {(r.workspace_id, r.store, r.product_id) for r in due}
    ):
        try:
            closed += await _close_due(service, workspace, store, product_id, emit_for(workspace))
        except Exception as exc:
            log.warning("closing the backorder of product %s failed: %s", product_id, exc)
    return closed


async def _close_due(
    service: Backorders, workspace: str, store: str, product_id: int, emit: Emit
) -> list[str]:
    client = await service.client(workspace, store)
    async with service.lock(workspace, store, product_id):
        now = service.clock.now()

        def txn(s: Session) -> list[BackorderAssignmentRow]:
            rows = [
                r
                for r in ledger.due_dates(s, now.date())
                if (r.workspace_id, r.store, r.product_id) == (workspace, store, product_id)
            ]
            for row in rows:
                ledger.close(row, ledger.DATE_REACHED, now)
                s.add(row)
            return rows

        rows = await ledger.write(service.db, txn)
        for row in rows:
            body = {
                **ev.base(row, service.settings),
                "date": (row.back_in_stock_date or now.date()).isoformat(),
            }
            dedup = ev.key(workspace, store, row.id, "date_reached", row.closures)
            await service.send(emit, ev.DATE_REACHED, workspace, store, body, dedup)
        if rows:
            await service.sync(client, workspace, store, product_id)
    return [row.id for row in rows]


async def reconcile(service: Backorders, *, emit_for: Any) -> dict[str, dict[int, str]]:
    """Read every product Sous manages, 250 per request: react to stock that crossed zero, and
    write what differs from what its assignments say (a write that failed earlier, or a change
    made on the store meanwhile). A store that fails is logged and skipped."""
    managed = ledger.read(service.db, ledger.managed)
    report: dict[str, dict[int, str]] = {}
    for (workspace, store), product_ids in sorted(managed.items()):
        try:
            found = await _reconcile_store(
                service, workspace, store, product_ids, emit_for(workspace)
            )
        except Exception as exc:
            log.warning("backorder check of store %s failed: %s", store, exc)
            continue
        if found:
            report[store] = found
    return report


async def _reconcile_store(
    service: Backorders, workspace: str, store: str, product_ids: list[int], emit: Emit
) -> dict[int, str]:
    client = await service.client(workspace, store)
    found = await client.get_products(product_ids, include=storefront.INCLUDE)

    def states(s: Session) -> dict[int, Any]:
        return {
            pid: (
                ledger.product_row(s, workspace, store, pid),
                ledger.live(s, workspace, store, [pid]),
            )
            for pid in product_ids
        }

    known = ledger.read(service.db, states)
    stock: list[int] = []
    stale: list[int] = []
    for product in found:
        pid = int(product["id"])
        held, rows = known.get(pid, (None, []))
        if held is None:
            continue
        if any(_crossed(product, held.previous, row) for row in rows):
            stock.append(pid)
            continue
        desired = storefront.desired_state(held.previous, rows, product, service.settings)
        cuts = [storefront.Deduction.from_dict(c) for c in (held.deduction or {}).get("cuts", [])]
        if (
            not rows
            or storefront.plan(product, desired, held.previous, service.settings, cuts).changed
        ):
            stale.append(pid)
    outcome = await on_stock(service, workspace, store, stock, emit=emit) if stock else {}
    for pid in stale:
        async with service.lock(workspace, store, pid):
            await service.sync(client, workspace, store, pid)
        outcome[pid] = "synced"
    return outcome


def _crossed(
    product: dict[str, Any], previous: dict[str, Any], row: BackorderAssignmentRow
) -> bool:
    """Stock reached zero under an armed assignment, or came back under an open or closed one."""
    tracked = storefront.tracking(previous) != "none"
    level = storefront.stock_level(product, previous, row.variant_id)
    if row.status == ARMED:
        return not tracked or level <= 0
    return row.status in (ACTIVE, CLOSED) and tracked and level > 0
