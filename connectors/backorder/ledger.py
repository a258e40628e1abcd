"""The ledger: which orders took backordered units, how much of each limit is left.

Every function here runs inside one database transaction (the engine's group-committing
writer, see :func:`write`), so checking a limit and booking units against it cannot interleave
with another order doing the same.

Which units are backordered: an assignment is only ``active`` while the product (or variant)
has no stock left, so every unit of it sold while ``active`` is sold beyond stock. Units sold
while ``closed`` slipped through before the store was switched off: they are booked too, as
over the limit. Order statuses (``/v2/order_statuses``):

* Incomplete (0) books nothing; Cancelled (5), Refunded (4) and Declined (6) give the units
  back (when the assignment's ``release_on_cancel`` says so); Partially Refunded (14) gives
  back up to the refunded quantity of each line;
* Shipped (2) and Completed (10) mark the order's waiting units shipped;
* every other status books the order once (by order id; repeats are ignored).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

from sqlmodel import Session, col, select

from engine import Database, Tx, new_id

from .models import (
    ACTIVE,
    ALLOCATED,
    ARMED,
    CLOSED,
    ENDED,
    LIVE,
    RELEASED,
    SHIPPED,
    WAITING,
    BackorderAssignmentRow,
    BackorderLineRow,
    BackorderProductRow,
    aware,
)

T = TypeVar("T")

RELEASE_STATUSES = frozenset({4, 5, 6})
PARTIAL_REFUND = 14
SHIPPED_STATUSES = frozenset({2, 10})
NO_BOOKING = frozenset({0})
LIMIT_REACHED = "limit_reached"
DATE_REACHED = "back_in_stock_date_reached"


async def write(db: Database, fn: Callable[[Session], T]) -> T:
    """Run ``fn`` with a session inside the writer's transaction; return once committed."""

    def run(tx: Tx) -> T:
        # Inside the writer's SAVEPOINT the session makes its own; commit() releases it.
        session = Session(bind=tx.conn, expire_on_commit=False)
        try:
            result = fn(session)
            session.commit()
            return result
        finally:
            session.close()

    return await db.writer.write(run)


def read(db: Database, fn: Callable[[Session], T]) -> T:
    with db.read_session() as session:
        return fn(session)


@dataclass(frozen=True)
class LineIn:
    product_id: int
    variant_id: int
    quantity: int
    refunded: int = 0


@dataclass(frozen=True)
class OrderIn:
    id: int
    status_id: int
    created_at: datetime
    lines: tuple[LineIn, ...]
    customer_email: str | None = None
    customer_name: str | None = None


@dataclass
class Booking:
    """What one order did to the ledger."""

    booked: list[BackorderLineRow] = field(default_factory=list)
    released: list[BackorderLineRow] = field(default_factory=list)
    shipped: list[BackorderLineRow] = field(default_factory=list)
    reached: list[BackorderAssignmentRow] = field(default_factory=list)
    reopened: list[BackorderAssignmentRow] = field(default_factory=list)
    assignments: dict[str, BackorderAssignmentRow] = field(default_factory=dict)
    closed: set[int] = field(default_factory=set)
    """Products of the order whose backorder is closed: the store should refuse them already,
    and is brought in line again in case switching it off failed."""

    @property
    def products(self) -> set[int]:
        """The products whose state on the store may have to change."""
        return {a.product_id for a in (*self.reached, *self.reopened)} | self.closed


def live(
    session: Session, workspace: str, store: str, product_ids: Sequence[int] | None = None
) -> list[BackorderAssignmentRow]:
    query = select(BackorderAssignmentRow).where(
        BackorderAssignmentRow.workspace_id == workspace,
        BackorderAssignmentRow.store == store,
        col(BackorderAssignmentRow.status).in_(LIVE),
    )
    if product_ids is not None:
        query = query.where(col(BackorderAssignmentRow.product_id).in_(list(product_ids)))
    return list(session.exec(query.order_by(col(BackorderAssignmentRow.created_at))).all())


def find_live(
    session: Session, workspace: str, store: str, product_id: int, variant_id: int | None
) -> BackorderAssignmentRow | None:
    for row in live(session, workspace, store, [product_id]):
        if row.variant_id == variant_id:
            return row
    return None


def product_row(
    session: Session, workspace: str, store: str, product_id: int
) -> BackorderProductRow | None:
    return session.get(BackorderProductRow, (workspace, store, product_id))


def new_assignment_id() -> str:
    return new_id("bko")


def _match(rows: Sequence[BackorderAssignmentRow], line: LineIn) -> BackorderAssignmentRow | None:
    mine = [r for r in rows if r.product_id == line.product_id and r.status in (ACTIVE, CLOSED)]
    exact = next((r for r in mine if r.variant_id == line.variant_id), None)
    return exact or next((r for r in mine if r.variant_id is None), None)


def close(row: BackorderAssignmentRow, reason: str, now: datetime) -> None:
    row.status = CLOSED
    row.closed_reason = reason
    row.closed_at = now
    row.closures += 1
    row.updated_at = now


def book_order(
    session: Session, workspace: str, store: str, order: OrderIn, now: datetime
) -> Booking:
    """Apply one order (as it is now) to the ledger; safe to repeat."""
    outcome = Booking()
    if order.status_id in NO_BOOKING:
        return outcome
    if order.status_id in RELEASE_STATUSES or order.status_id == PARTIAL_REFUND:
        return _release(session, workspace, store, order, now, outcome)
    existing = order_lines(session, workspace, store, order.id)
    if order.status_id in SHIPPED_STATUSES:
        for line in existing:
            if line.status == WAITING or line.status == ALLOCATED:
                line.status = SHIPPED
                line.updated_at = now
                session.add(line)
                outcome.shipped.append(line)
        return outcome
    rows = live(session, workspace, store, sorted({li.product_id for li in order.lines}))
    outcome.closed = {r.product_id for r in rows if r.status == CLOSED}
    if existing:
        return outcome
    merged: dict[tuple[int, int], int] = {}
    for li in order.lines:
        merged[(li.product_id, li.variant_id)] = (
            merged.get((li.product_id, li.variant_id), 0) + li.quantity
        )
    for (product_id, variant_id), quantity in merged.items():
        row = _match(rows, LineIn(product_id, variant_id, quantity))
        if row is None or quantity <= 0 or not _after_activation(row, order.created_at):
            continue
        room = row.limit_left if row.status == ACTIVE else 0
        row.units += quantity
        covered = row.incoming_quantity is None or row.units <= row.incoming_quantity
        line = BackorderLineRow(
            assignment_id=row.id,
            order_id=order.id,
            variant_id=variant_id,
            workspace_id=workspace,
            store=store,
            product_id=product_id,
            quantity=quantity,
            backordered=quantity,
            over_limit=max(0, quantity - room),
            covered=covered,
            status=WAITING,
            ordered_at=order.created_at,
            updated_at=now,
            customer_email=order.customer_email,
            customer_name=order.customer_name,
        )
        row.updated_at = now
        if row.status == ACTIVE and row.units >= row.backorder_limit:
            close(row, LIMIT_REACHED, now)
            outcome.reached.append(row)
        session.add(line)
        session.add(row)
        outcome.booked.append(line)
        outcome.assignments[row.id] = row
    return outcome


def _after_activation(row: BackorderAssignmentRow, created_at: datetime) -> bool:
    """Whether an order placed at ``created_at`` came while backorder was on (to the second:
    BigCommerce's order dates have no fractions, and a tie counts as backordered)."""
    if row.active_since is None:
        return False
    since = aware(row.active_since).replace(microsecond=0)
    return aware(created_at) >= since


def activate(row: BackorderAssignmentRow, now: datetime) -> None:
    row.status = ACTIVE
    row.active_since = row.active_since or now
    row.updated_at = now


def order_lines(
    session: Session, workspace: str, store: str, order_id: int
) -> list[BackorderLineRow]:
    query = select(BackorderLineRow).where(
        BackorderLineRow.workspace_id == workspace,
        BackorderLineRow.store == store,
        BackorderLineRow.order_id == order_id,
    )
    return list(session.exec(query).all())


def _release(
    session: Session, workspace: str, store: str, order: OrderIn, now: datetime, outcome: Booking
) -> Booking:
    full = order.status_id in RELEASE_STATUSES
    refunded: dict[tuple[int, int], int] = {}
    for li in order.lines:
        key = (li.product_id, li.variant_id)
        refunded[key] = refunded.get(key, 0) + li.refunded
    for line in order_lines(session, workspace, store, order.id):
        row = session.get(BackorderAssignmentRow, line.assignment_id)
        if row is None or not row.release_on_cancel or line.status in (RELEASED, SHIPPED):
            continue
        target = (
            line.backordered
            if full
            else min(line.backordered, refunded.get((line.product_id, line.variant_id), 0))
        )
        delta = target - line.released
        if delta <= 0:
            continue
        line.released = target
        if line.open_units == 0:
            line.status = RELEASED
        line.updated_at = now
        session.add(line)
        outcome.released.append(line)
        if row.status != ENDED:
            row.units = max(0, row.units - delta)
            row.updated_at = now
            if _may_reopen(row, now.date()):
                row.status = ACTIVE
                row.closed_reason = None
                row.closed_at = None
                outcome.reopened.append(row)
            session.add(row)
            outcome.assignments[row.id] = row
    return outcome


def _may_reopen(row: BackorderAssignmentRow, today: date) -> bool:
    return (
        row.status == CLOSED
        and row.closed_reason == LIMIT_REACHED
        and row.units < row.backorder_limit
        and (row.back_in_stock_date is None or row.back_in_stock_date > today)
    )


def restock(session: Session, row: BackorderAssignmentRow, now: datetime) -> list[BackorderLineRow]:
    """End ``row`` because stock came back; its waiting lines (oldest first) are allocated."""
    query = (
        select(BackorderLineRow)
        .where(BackorderLineRow.assignment_id == row.id, BackorderLineRow.status == WAITING)
        .order_by(col(BackorderLineRow.ordered_at), col(BackorderLineRow.order_id))
    )
    waiting = list(session.exec(query).all())
    for line in waiting:
        line.status = ALLOCATED
        line.updated_at = now
        session.add(line)
    end(row, "restocked", now)
    session.add(row)
    return waiting


def end(row: BackorderAssignmentRow, reason: str, now: datetime) -> None:
    row.status = ENDED
    row.ended_reason = reason
    row.ended_at = now
    row.updated_at = now


def due_dates(session: Session, today: date) -> list[BackorderAssignmentRow]:
    """Assignments still selling (or about to) whose back-in-stock date has come."""
    query = select(BackorderAssignmentRow).where(
        col(BackorderAssignmentRow.status).in_((ACTIVE, ARMED)),
        col(BackorderAssignmentRow.back_in_stock_date).is_not(None),
        col(BackorderAssignmentRow.back_in_stock_date) <= today,
    )
    return list(session.exec(query).all())


def managed(session: Session) -> dict[tuple[str, str], list[int]]:
    """Products Sous has changed and not yet restored, by (workspace, store)."""
    found: dict[tuple[str, str], list[int]] = {}
    for row in session.exec(select(BackorderProductRow)).all():
        found.setdefault((row.workspace_id, row.store), []).append(row.product_id)
    return found


def waiting_lines(session: Session, assignment_id: str) -> list[BackorderLineRow]:
    """The lines of an assignment still waiting for stock, oldest first."""
    return [
        line
        for line in lines_of(session, assignment_id)
        if line.status == WAITING and line.open_units > 0
    ]


def lines_of(session: Session, assignment_id: str) -> list[BackorderLineRow]:
    query = (
        select(BackorderLineRow)
        .where(BackorderLineRow.assignment_id == assignment_id)
        .order_by(col(BackorderLineRow.ordered_at), col(BackorderLineRow.order_id))
    )
    return list(session.exec(query).all())
