"""Backorders and the backlog of one store (a selector when several are connected).

The page reads the backorder ledger only (a few bounded queries, no store request): the active
backorders with their limit used, ETA and waiting orders; the orders waiting for stock, oldest
first; and the backordered products ranked by units waiting, drawn as an SVG bar chart with a
table of the same numbers. The backlog (the store's unfulfilled orders) is read from the store:
it is loaded after the page as a fragment (``/console/backorders/backlog``) and offered as CSV,
both through the backlog report (:class:`connectors.report.routes.Reports`: cached briefly,
shared builds, a spent quota answered at once).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import case, func, select as columns
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from api.console.auth import VisitorDep
from api.console.pages.gallery import StoreChoice, connected_stores, store_client
from api.console.render import PageError, page, render
from api.deps import ContainerDep
from connectors.backorder.models import (
    ALLOCATED,
    LIVE,
    WAITING,
    BackorderAssignmentRow,
    BackorderLineRow,
    aware,
)
from connectors.bigcommerce.client import BigCommerceClient
from connectors.report import render as report_render
from connectors.report.backlog import BacklogReport
from connectors.report.routes import Reports
from sous.container import Container

router = APIRouter()

MAX_ACTIVE = 100
MAX_WAITING = 100
MAX_SCAN = 2_000
"""The page's figures come from at most this many open ledger lines, the oldest."""
MAX_BACKLOG_ROWS = 200
MAX_CSV_ROWS = 10_000
TOP = 10
CHART_WIDTH, LABEL_WIDTH, BAR_HEIGHT, BAR_GAP = 640, 220, 20, 8
Line, Assignment = BackorderLineRow, BackorderAssignmentRow
OPEN = case((col(Line.backordered) > col(Line.released), Line.backordered - Line.released), else_=0)


@dataclass(frozen=True)
class Active:
    """A backorder switched on (or armed, or closed with orders still waiting)."""

    product_id: int
    variant_id: int | None
    name: str
    sku: str
    status: str
    limit: int
    used: int
    eta: date | None
    units_waiting: int
    orders: int
    oldest: datetime | None


@dataclass(frozen=True)
class Waiting:
    """An order's units waiting for stock (or set aside at restock)."""

    order_id: int
    product_id: int
    variant_id: int
    name: str
    sku: str
    units: int
    status: str
    ordered_at: datetime
    age_days: float
    customer: str
    eta: date | None


@dataclass(frozen=True)
class Demand:
    """A backordered product's place in the ranking."""

    product_id: int
    name: str
    sku: str
    units_waiting: int
    units_allocated: int
    orders: int
    oldest: datetime
    age_days: float

    @property
    def units(self) -> int:
        return self.units_waiting + self.units_allocated


def _days(since: datetime, now: datetime) -> float:
    return round(max(0.0, (now - aware(since)).total_seconds() / 86400), 1)


def _open_lines(workspace: str, store: str) -> Any:
    return (
        col(Line.workspace_id) == workspace,
        col(Line.store) == store,
        col(Line.status).in_((WAITING, ALLOCATED)),
    )


SCAN: tuple[Any, ...] = (
    col(Line.assignment_id),
    col(Line.order_id),
    col(Line.product_id),
    col(Line.variant_id),
    col(Line.status),
    OPEN,
    col(Line.ordered_at),
    col(Line.customer_name),
)


@dataclass
class Ledger:
    """What the page shows of a store's ledger."""

    active: list[Active]
    waiting: list[Waiting]
    waiting_total: int
    scanned: int
    ranking: list[Demand]


@dataclass
class _Sums:
    waiting: int = 0
    allocated: int = 0
    orders: set[int] = field(default_factory=set)
    oldest: datetime | None = None
    assignment: str = ""

    @property
    def units(self) -> int:
        return self.waiting + self.allocated

    def add(self, line: Any) -> None:
        aid, order, _, _, status, units, at, _ = line
        if status == WAITING:
            self.waiting += int(units)
        else:
            self.allocated += int(units)
        self.orders.add(order)
        self.oldest = at if self.oldest is None or at < self.oldest else self.oldest
        self.assignment = aid


def read_ledger(session: Session, workspace: str, store: str, now: datetime) -> Ledger:
    """One pass over the store's open ledger lines, oldest first (units waiting, or set aside at
    restock; at most :data:`MAX_SCAN` of them), then the assignments the page names."""
    lines = session.execute(
        columns(*SCAN)
        .where(*_open_lines(workspace, store))
        .order_by(col(Line.ordered_at), col(Line.order_id), col(Line.product_id))
        .limit(MAX_SCAN)
    ).all()
    per_assignment: dict[str, _Sums] = defaultdict(_Sums)
    per_product: dict[int, _Sums] = defaultdict(_Sums)
    for line in lines:
        per_assignment[line[0]].add(line)
        per_product[line[2]].add(line)
    oldest = lines[:MAX_WAITING]
    top = sorted(
        per_product.items(),
        key=lambda kv: (-kv[1].waiting - kv[1].allocated, -len(kv[1].orders), kv[0]),
    )[:TOP]
    live = _live(session, workspace, store)
    wanted = {li[0] for li in oldest} | {sums.assignment for _, sums in top}
    named = {a.id: a for a in live} | _assignments(session, wanted - {a.id for a in live})
    return Ledger(
        active=[_active(a, per_assignment.get(a.id)) for a in live],
        waiting=[_waiting(li, named.get(li[0]), now) for li in oldest],
        waiting_total=len(lines) if len(lines) < MAX_SCAN else _count(session, workspace, store),
        scanned=len(lines),
        ranking=[_demand(pid, sums, named.get(sums.assignment), now) for pid, sums in top],
    )


def _count(session: Session, workspace: str, store: str) -> int:
    found = session.exec(
        select(func.count()).select_from(Line).where(*_open_lines(workspace, store))
    )
    return int(found.one())


def _live(session: Session, workspace: str, store: str) -> list[BackorderAssignmentRow]:
    return list(
        session.exec(
            select(Assignment)
            .where(
                Assignment.workspace_id == workspace,
                Assignment.store == store,
                col(Assignment.status).in_(LIVE),
            )
            .order_by(col(Assignment.created_at).desc(), col(Assignment.id))
            .limit(MAX_ACTIVE)
        ).all()
    )


def _assignments(session: Session, ids: set[str]) -> dict[str, BackorderAssignmentRow]:
    if not ids:
        return {}
    rows = session.exec(select(Assignment).where(col(Assignment.id).in_(sorted(ids)))).all()
    return {row.id: row for row in rows}


def _active(a: BackorderAssignmentRow, sums: _Sums | None) -> Active:
    sums = sums or _Sums()
    oldest = aware(sums.oldest) if sums.oldest else None
    return Active(
        a.product_id, a.variant_id, a.product_name, a.sku, a.status, a.backorder_limit, a.units,
        a.eta, sums.waiting, len(sums.orders), oldest,
    )  # fmt: skip


def _waiting(line: Any, a: BackorderAssignmentRow | None, now: datetime) -> Waiting:
    _, order, product, variant, status, units, at, customer = line
    when = aware(at)
    name, sku = (a.product_name, a.sku) if a else ("", "")
    eta = a.eta if a else None
    return Waiting(
        order, product, variant, name, sku, int(units), status, when, _days(when, now),
        customer or "", eta,
    )  # fmt: skip


def _demand(product: int, sums: _Sums, a: BackorderAssignmentRow | None, now: datetime) -> Demand:
    assert sums.oldest is not None
    when = aware(sums.oldest)
    name, sku = (a.product_name, a.sku) if a else ("", "")
    return Demand(
        product, name, sku, sums.waiting, sums.allocated, len(sums.orders), when, _days(when, now)
    )


WAITING_FIELDS: tuple[Any, ...] = (
    col(Line.order_id),
    col(Line.product_id),
    col(Line.variant_id),
    col(Assignment.product_name),
    col(Assignment.sku),
    OPEN,
    col(Line.status),
    col(Line.ordered_at),
    col(Line.customer_name),
    col(Assignment.eta),
)


def waiting_orders(
    session: Session, workspace: str, store: str, now: datetime, limit: int = MAX_WAITING
) -> list[Waiting]:
    """The ledger's open lines, oldest order first (at most ``limit``)."""
    rows = session.execute(
        columns(*WAITING_FIELDS)
        .join(Assignment, col(Assignment.id) == col(Line.assignment_id), isouter=True)
        .where(*_open_lines(workspace, store))
        .order_by(col(Line.ordered_at), col(Line.order_id), col(Line.product_id))
        .limit(limit)
    ).all()
    found = []
    for order, product, variant, name, sku, units, status, at, customer, eta in rows:
        when = aware(at)
        name, sku, customer = name or "", sku or "", customer or ""
        age = _days(when, now)
        item = Waiting(
            order, product, variant, name, sku, int(units), status, when, age, customer, eta
        )
        found.append(item)
    return found


# -- the chart -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bar:
    label: str
    short: str
    value: int
    y: int
    width: int


def bars(ranking: list[Demand]) -> tuple[list[Bar], int]:
    """The ranking as horizontal bars (units waiting and allocated), and the chart's height."""
    most = max((d.units for d in ranking), default=0) or 1
    room = CHART_WIDTH - LABEL_WIDTH - 60
    found = []
    for i, item in enumerate(ranking):
        label = item.name or f"Product #{item.product_id}"
        short = label if len(label) <= 28 else label[:27] + "…"
        width = max(1, round(room * item.units / most)) if item.units else 0
        found.append(Bar(label, short, item.units, i * (BAR_HEIGHT + BAR_GAP), width))
    return found, max(1, len(found)) * (BAR_HEIGHT + BAR_GAP)


# -- the page --------------------------------------------------------------------------------------
def _store(stores: list[StoreChoice], wanted: str | None) -> StoreChoice | None:
    if not wanted:
        return stores[0] if stores else None
    found = next((s for s in stores if s.store_hash == wanted), None)
    if found is None:
        raise PageError(
            404, "No such store", "It is not connected to this workspace. Pick one from the list."
        )
    return found


def _ledger(container: Container, workspace: str, store: str) -> dict[str, Any]:
    with container.db.read_session() as s:
        found = read_ledger(s, workspace, store, container.clock.now())
    return vars(found)


def _backorders_page(
    request: Request, container: Container, workspace: str, wanted: str | None
) -> HTMLResponse:
    stores = connected_stores(container, workspace)
    store = _store(stores, wanted)
    ledger = _ledger(container, workspace, store.store_hash) if store else {}
    chart, height = bars(ledger.get("ranking", []))
    return page(
        request,
        "backorders.html",
        title="Backorders",
        stores=stores,
        store=store,
        chart=chart,
        chart_width=CHART_WIDTH,
        chart_height=height,
        label_width=LABEL_WIDTH,
        bar_height=BAR_HEIGHT,
        **ledger,
    )


@router.get("/backorders")
def backorders(
    request: Request, visitor: VisitorDep, container: ContainerDep, store: str | None = None
) -> Response:
    return _backorders_page(request, container, visitor.workspace, store)


def _csv(name: str, header: tuple[str, ...], rows: list[list[Any]]) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


WAITING_COLUMNS = (
    "order_id",
    "product_id",
    "variant_id",
    "product",
    "sku",
    "units",
    "status",
    "ordered_at",
    "age_days",
    "eta",
    "customer",
)


@router.get("/backorders/waiting.csv")
def waiting_csv(
    request: Request, visitor: VisitorDep, container: ContainerDep, store: str | None = None
) -> Response:
    """The orders waiting for stock, oldest first, as CSV (text cells formula-safe)."""
    chosen = _store(connected_stores(container, visitor.workspace), store)
    if chosen is None:
        raise PageError(404, "No store is connected", "Connect a store first.")
    now = container.clock.now()
    with container.db.read_session() as s:
        found = waiting_orders(s, visitor.workspace, chosen.store_hash, now, MAX_CSV_ROWS)
    safe = report_render.safe_cell
    rows = [
        [
            w.order_id,
            w.product_id,
            w.variant_id or "",
            safe(w.name),
            safe(w.sku),
            w.units,
            w.status,
            w.ordered_at.isoformat(),
            f"{w.age_days:g}",
            w.eta.isoformat() if w.eta else "",
            safe(w.customer),
        ]
        for w in found
    ]
    name = f"backorders-{chosen.store_hash}-{now:%Y-%m-%d}.csv"
    return _csv(name, WAITING_COLUMNS, rows)


# -- the backlog (from the store) ----------------------------------------------------------------
class _Clients:
    """The connected stores' clients, for the backlog report."""

    def __init__(self, container: Container) -> None:
        self.container = container

    async def client(self, workspace: str, store: str) -> BigCommerceClient:
        return (await store_client(self.container, workspace, store))[0]


def reports(request: Request, container: Container) -> Reports:
    """One report cache per app (the API's route keeps its own)."""
    found = getattr(request.app.state, "console_reports", None)
    if not isinstance(found, Reports):
        found = Reports(container.db, _Clients(container), container.clock, 15.0, 5.0)
        request.app.state.console_reports = found
    return found


async def _report(
    request: Request, container: Container, workspace: str, store: str | None
) -> tuple[BacklogReport | None, str | None, StoreChoice | None]:
    stores = await run_in_threadpool(connected_stores, container, workspace)
    chosen = _store(stores, store)
    if chosen is None:
        return None, "No store is connected.", None
    try:
        found = await reports(request, container).get(workspace, chosen.store_hash, None, 30, 10)
    except HTTPException as exc:
        return None, str(exc.detail), chosen
    return found, None, chosen


@router.get("/backorders/backlog")
async def backlog(
    request: Request, visitor: VisitorDep, container: ContainerDep, store: str | None = None
) -> Response:
    """A fragment: the store's backlog (unfulfilled orders, oldest first)."""
    found, problem, chosen = await _report(request, container, visitor.workspace, store)
    body = render(
        request,
        "backorders_backlog.html",
        report=found,
        problem=problem,
        store=chosen,
        orders=found.orders[:MAX_BACKLOG_ROWS] if found else [],
    )
    return HTMLResponse(body)


@router.get("/backorders/backlog.csv")
async def backlog_csv(
    request: Request, visitor: VisitorDep, container: ContainerDep, store: str | None = None
) -> Response:
    """The backlog as CSV: the report's orders, oldest first."""
    found, problem, _ = await _report(request, container, visitor.workspace, store)
    if found is None:
        raise PageError(503, "The backlog could not be read", problem or "")
    name = report_render.filename(found)
    return Response(
        report_render.orders_csv(found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
