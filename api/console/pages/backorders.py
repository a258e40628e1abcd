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
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import case, distinct, func, select as columns
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

MAX_ACTIVE = 200
MAX_WAITING = 100
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


def active_backorders(session: Session, workspace: str, store: str) -> list[Active]:
    per = (
        select(
            Line.assignment_id,
            func.sum(case((col(Line.status) == WAITING, OPEN), else_=0)).label("waiting"),
            func.count(distinct(col(Line.order_id))).label("orders"),
            func.min(col(Line.ordered_at)).label("oldest"),
        )
        .where(*_open_lines(workspace, store))
        .group_by(col(Line.assignment_id))
        .subquery()
    )
    rows = session.exec(
        select(Assignment, per.c.waiting, per.c.orders, per.c.oldest)
        .join(per, per.c.assignment_id == Assignment.id, isouter=True)
        .where(
            Assignment.workspace_id == workspace,
            Assignment.store == store,
            col(Assignment.status).in_(LIVE),
        )
        .order_by(col(Assignment.created_at).desc(), col(Assignment.id))
        .limit(MAX_ACTIVE)
    ).all()
    return [
        Active(
            a.product_id,
            a.variant_id,
            a.product_name,
            a.sku,
            a.status,
            a.backorder_limit,
            a.units,
            a.eta,
            int(waiting or 0),
            int(orders or 0),
            aware(oldest) if oldest else None,
        )
        for a, waiting, orders, oldest in rows
    ]


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


def waiting_count(session: Session, workspace: str, store: str) -> int:
    found = session.exec(
        select(func.count()).select_from(Line).where(*_open_lines(workspace, store))
    )
    return int(found.one())


def demand_ranking(
    session: Session, workspace: str, store: str, now: datetime, top: int = TOP
) -> list[Demand]:
    """Backordered products by units waiting (then orders), with the oldest waiting order."""
    waiting = func.sum(case((col(Line.status) == WAITING, OPEN), else_=0))
    allocated = func.sum(case((col(Line.status) == ALLOCATED, OPEN), else_=0))
    ranked: tuple[Any, ...] = (
        col(Line.product_id),
        waiting,
        allocated,
        func.count(distinct(col(Line.order_id))),
        func.min(col(Line.ordered_at)),
    )
    rows = session.execute(
        columns(*ranked)
        .where(*_open_lines(workspace, store))
        .group_by(col(Line.product_id))
        .order_by((waiting + allocated).desc(), func.count(distinct(col(Line.order_id))).desc())
        .order_by(col(Line.product_id))
        .limit(top)
    ).all()
    names = _names(session, workspace, store, [r[0] for r in rows])
    return [
        Demand(
            product_id,
            *names.get(product_id, ("", "")),
            int(w or 0),
            int(a or 0),
            int(orders),
            aware(oldest),
            _days(oldest, now),
        )
        for product_id, w, a, orders, oldest in rows
    ]


def _names(
    session: Session, workspace: str, store: str, product_ids: list[int]
) -> dict[int, tuple[str, str]]:
    """Each product's name and SKU as its newest assignment has them."""
    if not product_ids:
        return {}
    rows = session.exec(
        select(Assignment.product_id, Assignment.product_name, Assignment.sku)
        .where(
            Assignment.workspace_id == workspace,
            Assignment.store == store,
            col(Assignment.product_id).in_(product_ids),
        )
        .order_by(col(Assignment.created_at))
    ).all()
    return {product_id: (name, sku) for product_id, name, sku in rows}


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
    now = container.clock.now()
    with container.db.read_session() as s:
        ranking = demand_ranking(s, workspace, store, now)
        return {
            "active": active_backorders(s, workspace, store),
            "waiting": waiting_orders(s, workspace, store, now),
            "waiting_total": waiting_count(s, workspace, store),
            "ranking": ranking,
        }


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
