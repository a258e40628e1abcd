"""The report as people read it: a plain-text table for an e-mail body, and CSV files (whose
text cells never start a spreadsheet formula: :func:`safe_cell`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from .backlog import BacklogReport

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """A text cell a spreadsheet would take for a formula (it starts with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return) is written with a leading ``'``, so it reads as text."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _money(value: float, currency: str = "") -> str:
    text = f"{value:,.2f}"
    return f"{text} {currency}".strip()


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], right: set[int]) -> list[str]:
    cells = [list(header), *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])]


def text(report: BacklogReport, *, max_orders: int = 20) -> str:
    """A summary with tables: status, age, backordered products, demand, the oldest orders."""
    out = [f"Backlog of store {report.store} at {report.generated_at:%Y-%m-%d %H:%M} UTC", ""]
    out += _summary(report)
    out += ["", f"Backordered units waiting: {report.units_backordered}"]
    out += _backorders(report) + _demand(report) + _orders(report, max_orders)
    return "\n".join(out) + "\n"


def _summary(report: BacklogReport) -> list[str]:
    oldest = report.oldest
    if oldest is None:
        return ["No unfulfilled orders."]
    by_status = ((s.status, s.count, _money(s.value)) for s in report.by_status)
    by_age = ((a.label, a.count, _money(a.value)) for a in report.by_age)
    return [
        f"Unfulfilled orders: {report.count}, worth {_money(report.value, report.currency)}; "
        f"oldest #{oldest.id} ({oldest.age_days:g} days, {oldest.status}).",
        "",
        *_table(("Status", "Orders", "Value"), by_status, {1, 2}),
        "",
        *_table(("Age", "Orders", "Value"), by_age, {1, 2}),
    ]


def _backorders(report: BacklogReport) -> list[str]:
    if not report.backorders:
        return []
    rows = (
        (
            b.name or f"#{b.product_id}",
            b.units_waiting,
            b.units_allocated,
            b.orders,
            "-" if b.limit_left is None else b.limit_left,
            f"#{b.oldest_order_id} ({b.oldest_age_days:g} d)",
            b.eta or "-",
        )
        for b in report.backorders
    )
    head = ("Product", "Waiting", "Allocated", "Orders", "Limit left", "Oldest order", "ETA")
    return ["", *_table(head, rows, {1, 2, 3, 4})]


def _demand(report: BacklogReport) -> list[str]:
    if not report.demand:
        return []
    rows = (
        (d.name or f"#{d.product_id}", d.units, d.orders, d.units_released) for d in report.demand
    )
    return [
        "",
        f"Most ordered while sold out (last {report.demand_window_days} days)",
        *_table(("Product", "Units", "Orders", "Given back"), rows, {1, 2, 3}),
    ]


def _orders(report: BacklogReport, max_orders: int) -> list[str]:
    if not report.orders:
        return []
    shown = report.orders[:max_orders]
    more = report.count > len(shown)
    title = f"Oldest {len(shown)} of {report.count} orders" if more else "Orders"
    rows = (
        (
            f"#{o.id}",
            o.status,
            f"{o.date_created:%Y-%m-%d}",
            f"{o.age_days:g}",
            _money(o.total),
            o.backordered_units or "",
        )
        for o in shown
    )
    head = ("Order", "Status", "Created", "Age (d)", "Total", "Backordered")
    return ["", title, *_table(head, rows, {3, 4, 5})]


ORDER_COLUMNS = (
    "order_id",
    "status_id",
    "status",
    "date_created",
    "age_days",
    "total",
    "currency",
    "items_total",
    "items_shipped",
    "backordered_units",
)
BACKORDER_COLUMNS = (
    "product_id",
    "variant_id",
    "product",
    "sku",
    "status",
    "units_waiting",
    "units_allocated",
    "orders",
    "limit",
    "limit_left",
    "oldest_order_id",
    "oldest_ordered_at",
    "eta",
)


def orders_csv(report: BacklogReport, *, max_rows: int | None = None) -> str:
    """One row per backlog order, oldest first (RFC 4180, CRLF line ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(ORDER_COLUMNS)
    for o in report.orders[:max_rows]:
        writer.writerow(
            [
                o.id,
                o.status_id,
                safe_cell(o.status),
                o.date_created.isoformat(),
                f"{o.age_days:g}",
                f"{o.total:.2f}",
                safe_cell(o.currency),
                o.items_total,
                o.items_shipped,
                o.backordered_units,
            ]
        )
    return buffer.getvalue()


def backorders_csv(report: BacklogReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(BACKORDER_COLUMNS)
    for b in report.backorders:
        writer.writerow(
            [
                b.product_id,
                b.variant_id or "",
                safe_cell(b.name),
                safe_cell(b.sku),
                b.status,
                b.units_waiting,
                b.units_allocated,
                b.orders,
                "" if b.limit is None else b.limit,
                "" if b.limit_left is None else b.limit_left,
                b.oldest_order_id,
                b.oldest_ordered_at.isoformat(),
                b.eta or "",
            ]
        )
    return buffer.getvalue()


def filename(report: BacklogReport) -> str:
    return f"backlog-{report.store}-{report.generated_at:%Y-%m-%d}.csv"
