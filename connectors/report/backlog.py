"""The backlog and backorder report of one store.

**Backlog** — every order not yet shipped, completed, cancelled or refunded, defined by the
status ids of ``GET /v2/order_statuses``:

* in the backlog: Awaiting Payment (7), Awaiting Fulfillment (11), Awaiting Shipment (9),
  Awaiting Pickup (8), Partially Shipped (3), Manual Verification Required (12);
* in it while items remain unshipped (``items_shipped < items_total``): Disputed (13) and
  Partially Refunded (14), which can follow either a shipped or an unshipped order;
* never: Incomplete (0) and Pending (1) (checkout not finished), Shipped (2), Completed (10),
  Refunded (4), Cancelled (5), Declined (6).

**Backorders** — from the backorder ledger: the units of backlog orders still waiting for stock
(or set aside at restock, ``allocated``), per product and variant, with the limit left, the
oldest waiting order and the ETA. **Demand** — sold-out products customers kept ordering: the
units and orders the ledger took in the last ``window_days``.

Requests: one ``GET /v2/orders/count`` (counts per status, so statuses without orders cost
nothing), then ``GET /v2/orders?status_id=…`` per status with orders, 250 per page, all through
the store's client (its pagination and quota budget). Order lines are never fetched: the ledger
already holds the backordered lines. The report is a snapshot: orders placed while it pages are
counted in the next one.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from connectors.backorder.models import (
    ALLOCATED,
    LIVE,
    WAITING,
    BackorderAssignmentRow,
    BackorderLineRow,
    aware,
)
from connectors.bigcommerce.client import BigCommerceClient
from engine import Database

BACKLOG_STATUSES = (7, 11, 9, 8, 3, 12)
WHILE_UNSHIPPED = (13, 14)
PAGE = 250
AGE_BUCKETS: tuple[tuple[str, float, float | None], ...] = (
    ("<1d", 0, 1),
    ("1-3d", 1, 3),
    ("3-7d", 3, 7),
    ("7-14d", 7, 14),
    (">14d", 14, None),
)


class BacklogOrder(BaseModel):
    id: int
    status_id: int
    status: str
    date_created: datetime
    age_days: float
    total: float
    currency: str = ""
    items_total: int = 0
    items_shipped: int = 0
    backordered_units: int = Field(default=0, description="units waiting for stock")


class StatusCount(BaseModel):
    status_id: int
    status: str
    count: int
    value: float


class AgeBucket(BaseModel):
    label: str
    count: int
    value: float


class BackorderedProduct(BaseModel):
    product_id: int
    variant_id: int | None
    name: str
    sku: str
    status: str = Field(description="the assignment: armed | active | closed | ended")
    units_waiting: int
    units_allocated: int = Field(description="set aside at restock, not shipped yet")
    orders: int
    limit: int | None
    limit_left: int | None
    oldest_order_id: int
    oldest_ordered_at: datetime
    oldest_age_days: float
    eta: str | None


class DemandRow(BaseModel):
    product_id: int
    name: str
    sku: str
    units: int
    orders: int
    units_released: int = Field(description="given back by cancellations and refunds")
    last_ordered_at: datetime


class BacklogReport(BaseModel):
    store: str
    generated_at: datetime
    currency: str
    statuses: list[int] = Field(description="the status ids counted as backlog")
    count: int
    value: float
    oldest: BacklogOrder | None
    by_status: list[StatusCount]
    by_age: list[AgeBucket]
    units_backordered: int
    backorders: list[BackorderedProduct]
    demand_window_days: int
    demand: list[DemandRow]
    orders: list[BacklogOrder] = Field(description="the backlog, oldest first")
    requests: int = Field(description="BigCommerce API requests this report made")


def _money(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else 0))
    except InvalidOperation:
        return Decimal(0)


def _when(value: Any, default: datetime) -> datetime:
    if isinstance(value, str) and value:
        try:
            return aware(parsedate_to_datetime(value))
        except (TypeError, ValueError):
            try:
                return aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
            except ValueError:
                return default
    return default


def _days(since: datetime, now: datetime) -> float:
    return round(max(0.0, (now - since).total_seconds() / 86400), 2)


def _bucket(age: float) -> str:
    for label, low, high in AGE_BUCKETS:
        if age >= low and (high is None or age < high):
            return label
    return AGE_BUCKETS[-1][0]


async def fetch_backlog(
    client: BigCommerceClient, statuses: tuple[int, ...]
) -> tuple[dict[int, str], list[dict[str, Any]], int]:
    """Status names, the raw orders in ``statuses``, and the requests it took."""
    counts = await client.request("GET", "/orders/count", version="v2") or {}
    names: dict[int, str] = {}
    wanted: dict[int, int] = {}
    for entry in counts.get("statuses") or []:
        sid = int(entry.get("id", -1))
        names[sid] = str(entry.get("custom_label") or entry.get("name") or sid)
        if sid in statuses and int(entry.get("count") or 0) > 0:
            wanted[sid] = int(entry["count"])

    sent = [1]

    async def pages(sid: int, count: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in range(1, math.ceil(count / PAGE) + 1):
            query = {"status_id": sid, "sort": "date_created:asc", "page": page, "limit": PAGE}
            sent[0] += 1
            body = await client.request("GET", "/orders", version="v2", params=query)
            if not isinstance(body, list) or not body:
                break
            found.extend(body)
        return found

    chunks = await asyncio.gather(*(pages(sid, n) for sid, n in sorted(wanted.items())))
    return names, [o for chunk in chunks for o in chunk], sent[0]


def _in_backlog(order: dict[str, Any], statuses: tuple[int, ...]) -> bool:
    sid = int(order.get("status_id") or 0)
    if sid in WHILE_UNSHIPPED:
        return int(order.get("items_shipped") or 0) < int(order.get("items_total") or 0)
    return sid in statuses


async def build_report(
    client: BigCommerceClient,
    db: Database,
    workspace: str,
    store: str,
    now: datetime,
    *,
    statuses: tuple[int, ...] | None = None,
    window_days: int = 30,
    top: int = 10,
) -> BacklogReport:
    included = tuple(statuses) if statuses else (*BACKLOG_STATUSES, *WHILE_UNSHIPPED)
    names, raw, requests = await fetch_backlog(client, included)
    raw = [o for o in raw if _in_backlog(o, included)]
    with db.read_session() as session:
        lines = _lines(session, workspace, store)
        assignments = _assignments(session, workspace, store)
    open_ids = {int(o["id"]) for o in raw}
    waiting = [li for li in lines if li.status in (WAITING, ALLOCATED) and li.order_id in open_ids]
    per_order: dict[int, int] = defaultdict(int)
    for li in waiting:
        per_order[li.order_id] += li.open_units
    orders = sorted(
        (_order(o, names, now, per_order.get(int(o["id"]), 0)) for o in raw),
        key=lambda o: (o.date_created, o.id),
    )
    since = now - timedelta(days=window_days)
    return BacklogReport(
        store=store,
        generated_at=now,
        currency=next((o.currency for o in orders if o.currency), ""),
        statuses=list(included),
        count=len(orders),
        value=float(sum((_money(o.total) for o in orders), Decimal(0))),
        oldest=orders[0] if orders else None,
        by_status=_by_status(orders),
        by_age=_by_age(orders),
        units_backordered=sum(per_order.values()),
        backorders=_backorders(waiting, assignments, now),
        demand_window_days=window_days,
        demand=_demand([li for li in lines if aware(li.ordered_at) >= since], assignments)[:top],
        orders=orders,
        requests=requests,
    )


def _order(raw: dict[str, Any], names: dict[int, str], now: datetime, units: int) -> BacklogOrder:
    created = _when(raw.get("date_created"), now)
    sid = int(raw.get("status_id") or 0)
    return BacklogOrder(
        id=int(raw["id"]),
        status_id=sid,
        status=str(raw.get("custom_status") or names.get(sid) or raw.get("status") or sid),
        date_created=created,
        age_days=_days(created, now),
        total=float(_money(raw.get("total_inc_tax"))),
        currency=str(raw.get("currency_code") or ""),
        items_total=int(raw.get("items_total") or 0),
        items_shipped=int(raw.get("items_shipped") or 0),
        backordered_units=units,
    )


def _by_status(orders: list[BacklogOrder]) -> list[StatusCount]:
    groups: dict[int, list[BacklogOrder]] = defaultdict(list)
    for order in orders:
        groups[order.status_id].append(order)
    rows = [
        StatusCount(
            status_id=sid,
            status=group[0].status,
            count=len(group),
            value=float(sum((_money(o.total) for o in group), Decimal(0))),
        )
        for sid, group in groups.items()
    ]
    return sorted(rows, key=lambda r: (-r.count, r.status_id))


def _by_age(orders: list[BacklogOrder]) -> list[AgeBucket]:
    rows = {label: AgeBucket(label=label, count=0, value=0.0) for label, *_ in AGE_BUCKETS}
    for order in orders:
        row = rows[_bucket(order.age_days)]
        row.count += 1
        row.value = float(_money(row.value) + _money(order.total))
    return list(rows.values())


def _lines(session: Session, workspace: str, store: str) -> list[BackorderLineRow]:
    query = select(BackorderLineRow).where(
        BackorderLineRow.workspace_id == workspace, BackorderLineRow.store == store
    )
    return list(session.exec(query.order_by(col(BackorderLineRow.ordered_at))).all())


def _assignments(session: Session, workspace: str, store: str) -> dict[str, BackorderAssignmentRow]:
    query = select(BackorderAssignmentRow).where(
        BackorderAssignmentRow.workspace_id == workspace, BackorderAssignmentRow.store == store
    )
    return {row.id: row for row in session.exec(query).all()}


def _backorders(
    lines: list[BackorderLineRow], assignments: dict[str, BackorderAssignmentRow], now: datetime
) -> list[BackorderedProduct]:
    groups: dict[tuple[int, int | None], list[BackorderLineRow]] = defaultdict(list)
    for line in lines:
        row = assignments.get(line.assignment_id)
        groups[(line.product_id, row.variant_id if row else None)].append(line)
    found = []
    for (product_id, variant_id), group in groups.items():
        rows = [assignments[li.assignment_id] for li in group if li.assignment_id in assignments]
        current = max(rows, key=lambda r: (r.status in LIVE, aware(r.created_at)), default=None)
        oldest = min(group, key=lambda li: (aware(li.ordered_at), li.order_id))
        live = current is not None and current.status in LIVE
        found.append(
            BackorderedProduct(
                product_id=product_id,
                variant_id=variant_id,
                name=current.product_name if current else "",
                sku=current.sku if current else "",
                status=current.status if current else "ended",
                units_waiting=sum(li.open_units for li in group if li.status == WAITING),
                units_allocated=sum(li.open_units for li in group if li.status == ALLOCATED),
                orders=len({li.order_id for li in group}),
                limit=current.backorder_limit if live and current else None,
                limit_left=current.limit_left if live and current else None,
                oldest_order_id=oldest.order_id,
                oldest_ordered_at=aware(oldest.ordered_at),
                oldest_age_days=_days(aware(oldest.ordered_at), now),
                eta=current.eta.isoformat() if current and current.eta else None,
            )
        )
    return sorted(found, key=lambda p: (-(p.units_waiting + p.units_allocated), p.product_id))


def _demand(
    lines: list[BackorderLineRow], assignments: dict[str, BackorderAssignmentRow]
) -> list[DemandRow]:
    groups: dict[int, list[BackorderLineRow]] = defaultdict(list)
    for line in lines:
        groups[line.product_id].append(line)
    rows = []
    for product_id, group in groups.items():
        named = next(
            (assignments[li.assignment_id] for li in group if li.assignment_id in assignments), None
        )
        rows.append(
            DemandRow(
                product_id=product_id,
                name=named.product_name if named else "",
                sku=named.sku if named else "",
                units=sum(li.quantity for li in group),
                orders=len({li.order_id for li in group}),
                units_released=sum(li.released for li in group),
                last_ordered_at=max(aware(li.ordered_at) for li in group),
            )
        )
    return sorted(rows, key=lambda r: (-r.units, -r.orders, r.product_id))
