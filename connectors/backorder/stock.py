"""Stock and the end of a backorder.

* :func:`on_stock` — products whose stock may have changed are read from the store: an
  ``armed`` assignment whose stock reached zero switches on; stock back above zero ends the
  backorder (``backorder.restocked`` with the waiting orders oldest first, then
  ``backorder.unassigned``) and, unless disabled, takes the waiting units off the new level.
* :func:`unassign` — restores the product, then ends the assignment (in that order, so a
  retried step finds the assignment still there if the store write failed). With stock back on
  the store it is a restock (the waiting orders are allocated as above), so a recipe that
  unassigns on ``bigcommerce.product.back_in_stock`` and the automatic restock agree.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from connectors.bigcommerce.client import BigCommerceClient

from . import events as ev, ledger, storefront
from .models import ACTIVE, ARMED, CLOSED, BackorderAssignmentRow, BackorderLineRow
from .service import Backorders, Change, Emit
from .storefront import Applied, Deduction


async def unassign(
    service: Backorders,
    workspace: str,
    store: str | None,
    product_id: int,
    variant_id: int | None,
    *,
    emit: Emit,
) -> Change | None:
    """End the assignment and restore the product; None when nothing was assigned."""
    client = await service.client(workspace, store)
    assert store is not None
    async with service.lock(workspace, store, product_id):
        managed = ledger.read(
            service.db, lambda s: ledger.product_row(s, workspace, store, product_id)
        )
        target = ledger.read(
            service.db, lambda s: ledger.find_live(s, workspace, store, product_id, variant_id)
        )
        if target is None or managed is None:
            await service.sync(client, workspace, store, product_id)  # finish an earlier restore
            return None
        product = await storefront.fetch(client, product_id)
        level = storefront.stock_level(product, managed.previous, variant_id)
        tracked = storefront.tracking(managed.previous) != "none"
        if target.status in (ACTIVE, CLOSED) and tracked and level > 0:
            _, applied = await _stock_one(
                service,
                client,
                workspace,
                store,
                product_id,
                emit,
                product=product,
                only={target.id},
            )
            row = ledger.read(service.db, lambda s: s.get(BackorderAssignmentRow, target.id))
            return Change(row or target, changes=["status"], applied=applied)
        # The store first: if writing it fails, the assignment is still there for the retry.
        ending = frozenset({target.id})
        applied = await service.sync(client, workspace, store, product_id, product, ending=ending)
        now = service.clock.now()

        def txn(s: Session) -> BackorderAssignmentRow | None:
            row = ledger.find_live(s, workspace, store, product_id, variant_id)
            if row is not None:
                ledger.end(row, "unassigned", now)
                s.add(row)
            held = ledger.product_row(s, workspace, store, product_id)
            others = [r for r in ledger.live(s, workspace, store, [product_id]) if r is not row]
            if held is not None and not others:
                s.delete(held)
            return row

        ended = await ledger.write(service.db, txn)
    if ended is None:
        return None
    await service.send_unassigned(ended, workspace, store, managed.previous, emit)
    return Change(ended, changes=["status"], applied=applied)


async def on_stock(
    service: Backorders, workspace: str, store: str, product_ids: list[int], *, emit: Emit
) -> dict[int, str]:
    """Read each product (under its lock) and switch on or end its assignments; returns what
    happened per product (``activated``, ``restocked`` or ``unchanged``)."""
    client = await service.client(workspace, store)
    outcome: dict[int, str] = {}
    for product_id in product_ids:
        async with service.lock(workspace, store, product_id):
            found, _ = await _stock_one(service, client, workspace, store, product_id, emit)
            outcome[product_id] = found
    return outcome


async def _stock_one(
    service: Backorders,
    client: BigCommerceClient,
    workspace: str,
    store: str,
    product_id: int,
    emit: Emit,
    *,
    product: dict[str, Any] | None = None,
    only: set[str] | None = None,
) -> tuple[str, Applied]:
    """Switch on or end the product's assignments (all, or ``only`` these); hold the lock."""
    rows = ledger.read(service.db, lambda s: ledger.live(s, workspace, store, [product_id]))
    managed = ledger.read(service.db, lambda s: ledger.product_row(s, workspace, store, product_id))
    if not rows or managed is None:
        return "unchanged", Applied()
    if product is None:
        product = await storefront.fetch(client, product_id)
    previous = managed.previous
    tracked = storefront.tracking(previous) != "none"
    now = service.clock.now()
    levels = {row.id: storefront.stock_level(product, previous, row.variant_id) for row in rows}
    chosen = [r for r in rows if only is None or r.id in only]
    wake = [r.id for r in chosen if r.status == ARMED and (not tracked or levels[r.id] <= 0)]
    done = [r.id for r in chosen if r.status in (ACTIVE, CLOSED) and tracked and levels[r.id] > 0]
    if not wake and not done:
        return "unchanged", Applied()

    def txn(s: Session) -> tuple[list[BackorderAssignmentRow], dict[str, list[BackorderLineRow]]]:
        woke, waiting = [], {}
        for row in ledger.live(s, workspace, store, [product_id]):
            if row.id in wake and row.status == ARMED:
                ledger.activate(row, now)
                row.version += 1
                s.add(row)
                woke.append(row)
            elif row.id in done:
                waiting[row.id] = ledger.restock(s, row, now)
        cuts = _deductions(product, previous, s, waiting)
        if cuts:
            held = ledger.product_row(s, workspace, store, product_id)
            if held is not None:
                held.deduction = {"cuts": [c.to_dict() for c in cuts]}
                s.add(held)
        return woke, waiting

    woke, waiting = await ledger.write(service.db, txn)
    for row in woke:
        body = {**ev.base(row, service.settings), "changes": ["status"], "reason": "activated"}
        await service.send(
            emit, ev.UPDATED, workspace, store, body, ev.key(workspace, store, row.id, "activated")
        )
    for aid, lines in waiting.items():
        row = ledger.read(service.db, lambda s, aid=aid: s.get(BackorderAssignmentRow, aid))  # type: ignore[misc]
        if row is None:
            continue
        await _send_restocked(
            service, workspace, store, row, lines, levels[aid], product, previous, emit
        )
        await service.send_unassigned(row, workspace, store, previous, emit)
    applied = await service.sync(client, workspace, store, product_id, product)
    return ("restocked" if waiting else "activated"), applied


def _deductions(
    product: dict[str, Any],
    previous: dict[str, Any],
    s: Session,
    waiting: dict[str, list[BackorderLineRow]],
) -> list[Deduction]:
    by_variant = storefront.tracking(previous) == "variant"
    units: dict[int | None, int] = {}
    for aid, lines in waiting.items():
        row = s.get(BackorderAssignmentRow, aid)
        if row is None or not row.reserve_on_restock:
            continue
        for line in lines:
            target = line.variant_id if by_variant else None
            units[target] = units.get(target, 0) + line.open_units
    cuts = []
    for target, count in units.items():
        if count <= 0:
            continue
        seen = storefront.stock_level(product, previous, target)
        cuts.append(Deduction(target, seen, count))
    return cuts


async def _send_restocked(
    service: Backorders,
    workspace: str,
    store: str,
    row: BackorderAssignmentRow,
    lines: list[BackorderLineRow],
    level: int,
    product: dict[str, Any],
    previous: dict[str, Any],
    emit: Emit,
) -> None:
    units = sum(li.open_units for li in lines)
    after = max(0, level - units) if row.reserve_on_restock else level
    body = {
        **ev.base(row, service.settings),
        "level_before": level,
        "level_after": after,
        "units_waiting": units,
        "orders": [
            ev.WaitingOrder(
                order_id=li.order_id,
                variant_id=li.variant_id,
                quantity=li.open_units,
                ordered_at=li.ordered_at,
            ).model_dump(mode="json")
            for li in lines
            if li.open_units > 0
        ],
    }
    await service.send(
        emit, ev.RESTOCKED, workspace, store, body, ev.key(workspace, store, row.id, "restocked")
    )
