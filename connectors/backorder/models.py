"""The backorder tables: products under management, assignments, and the ledger.

``backorder_product``
    One row per product Sous has changed on the store, holding what the product looked like
    *before* the first assignment (``previous``): the product fields Sous writes, the marker
    custom field if it already existed, and the purchasing flags of the variants. It lives as
    long as any assignment of the product is not ended, and is deleted once the product has
    been restored. ``deduction`` holds a stock correction still to be written at restock.

``backorder_assignment``
    One row per assignment of a product (``variant_id`` null) or of one variant. Its life:
    ``armed`` (assigned while stock is left; switches on at zero) → ``active`` (shoppers can
    buy at zero stock) → ``closed`` (switched itself off: limit used up or back-in-stock date
    reached; orders already taken still wait) → ``ended`` (unassigned or restocked; history).

``backorder_line``
    The ledger: the units of one order line (or of all lines of one order for the same
    variant) that fell under an assignment, how many of them were backordered (sold beyond
    stock) and how many were given back by a cancellation or refund. ``status`` is
    ``waiting`` (no stock yet), ``allocated`` (stock came back and was set aside for it),
    ``released`` (cancelled or refunded) or ``shipped``.

Times are timezone-aware UTC; dates (ETA, back-in-stock) are calendar dates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Date, DateTime, Index
from sqlmodel import Field, SQLModel

ARMED, ACTIVE, CLOSED, ENDED = "armed", "active", "closed", "ended"
LIVE = (ARMED, ACTIVE, CLOSED)
WAITING, ALLOCATED, RELEASED, SHIPPED = "waiting", "allocated", "released", "shipped"


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


def _day() -> Any:
    return Field(default=None, sa_column=Column(Date, nullable=True))


def _json() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time Sous stores is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class BackorderProductRow(SQLModel, table=True):
    __tablename__ = "backorder_product"
    workspace_id: str = Field(primary_key=True, max_length=64)
    store: str = Field(primary_key=True, max_length=64)
    product_id: int = Field(primary_key=True)
    previous: dict[str, Any] = _json()
    deduction: dict[str, Any] | None = _json()
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class BackorderAssignmentRow(SQLModel, table=True):
    __tablename__ = "backorder_assignment"
    __table_args__ = (
        Index("ix_backorder_assignment_target", "workspace_id", "store", "product_id", "status"),
    )
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(max_length=64)
    store: str = Field(max_length=64)
    product_id: int
    variant_id: int | None = None
    product_name: str = Field(default="", max_length=250)
    sku: str = Field(default="", max_length=255)
    status: str = Field(max_length=10)
    backorder_limit: int
    message: str = Field(default="", max_length=255)
    back_in_stock_date: date | None = _day()
    incoming_quantity: int | None = None
    lead_time_days: int = 0
    eta: date | None = _day()
    eta_source: str = Field(default="none", max_length=20)
    release_on_cancel: bool = True
    reserve_on_restock: bool = True
    units: int = 0
    """Backordered units of orders still waiting (released units are given back)."""
    closures: int = 0
    closed_reason: str | None = Field(default=None, max_length=40)
    ended_reason: str | None = Field(default=None, max_length=40)
    version: int = 1
    created_key: str = Field(default="", max_length=200)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    active_since: datetime | None = _ts(nullable=True)
    """When it first switched on: orders placed before then took stock, not backorder."""
    closed_at: datetime | None = _ts(nullable=True)
    ended_at: datetime | None = _ts(nullable=True)

    @property
    def limit_left(self) -> int:
        return max(0, self.backorder_limit - self.units)


class BackorderLineRow(SQLModel, table=True):
    __tablename__ = "backorder_line"
    __table_args__ = (
        Index("ix_backorder_line_order", "workspace_id", "store", "order_id"),
        Index("ix_backorder_line_product", "workspace_id", "store", "product_id", "status"),
        Index(
            "ix_backorder_line_open",
            "workspace_id",
            "store",
            "ordered_at",
            "order_id",
            "product_id",
            "status",
        ),
    )
    assignment_id: str = Field(primary_key=True, max_length=40)
    order_id: int = Field(primary_key=True)
    variant_id: int = Field(primary_key=True, default=0)
    workspace_id: str = Field(max_length=64)
    store: str = Field(max_length=64)
    product_id: int
    quantity: int
    backordered: int
    released: int = 0
    over_limit: int = 0
    covered: bool = True
    """Whether the incoming stock (when one was given) covers these units."""
    status: str = Field(max_length=10)
    ordered_at: datetime = _ts()
    updated_at: datetime = _ts()
    customer_email: str | None = Field(default=None, max_length=254)
    """The order's billing e-mail address, to tell the customer when the ETA moves."""
    customer_name: str | None = Field(default=None, max_length=200)

    @property
    def open_units(self) -> int:
        return max(0, self.backordered - self.released)
