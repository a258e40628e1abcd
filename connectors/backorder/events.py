"""The events the backorder connector sends, as triggers recipes can start from.

Every payload carries ``product`` (id, name, sku) and, except ``backorder.ordered``,
``backorder``: the assignment as it is after the change, with ``eta`` (ISO date or null),
``message`` (as set on the store, possibly with ``%%DATE%%``) and ``message_rendered`` (the
date filled in). Dedup keys derive from the assignment and what happened to it, so a repeated
step or job never sends an event twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from engine import TriggerSpec

from . import eta
from .config import BackorderSettings
from .models import BackorderAssignmentRow, BackorderLineRow

ASSIGNED = "backorder.assigned"
UPDATED = "backorder.updated"
UNASSIGNED = "backorder.unassigned"
LIMIT_REACHED = "backorder.limit_reached"
DATE_REACHED = "backorder.back_in_stock_date_reached"
ORDERED = "backorder.ordered"
RESTOCKED = "backorder.restocked"
ORDER_ETA_CHANGED = "backorder.order_eta_changed"
SOURCE = "backorder"


class ProductRef(BaseModel):
    id: int
    name: str = ""
    sku: str = ""


class BackorderInfo(BaseModel):
    assignment_id: str
    product_id: int
    variant_id: int | None = None
    status: str = Field(description="armed | active | closed | ended")
    limit: int = Field(description="most units that may be backordered")
    limit_left: int
    units_backordered: int = Field(description="backordered units booked, less those given back")
    message: str
    message_rendered: str
    eta: date | None = Field(default=None, description="expected ship date")
    eta_source: str = Field(description="back_in_stock_date | incoming_stock | none")
    back_in_stock_date: date | None = None
    incoming_quantity: int | None = None


class AssignmentPayload(BaseModel):
    product: ProductRef
    backorder: BackorderInfo


class UpdatedPayload(AssignmentPayload):
    changes: list[str] = Field(description="the fields that changed")
    reason: str = Field(description="update | reopened (units were given back)")


class UnassignedPayload(AssignmentPayload):
    reason: str = Field(description="unassigned | restocked")
    restored: dict[str, Any] = Field(description="product fields written back")


class LimitReachedPayload(AssignmentPayload):
    order_id: int | None = Field(default=None, description="the order that used up the limit")


class DateReachedPayload(AssignmentPayload):
    date: date


class OrderRef(BaseModel):
    id: int
    status_id: int
    date_created: datetime


class OrderedLine(BaseModel):
    assignment_id: str
    product_id: int
    variant_id: int
    product_name: str = ""
    quantity: int
    backordered: int
    over_limit: int = Field(description="units beyond the limit (sold before it switched off)")
    covered: bool = Field(description="whether the incoming stock covers these units")
    eta: date | None = None
    message_rendered: str = ""


class OrderedPayload(BaseModel):
    order: OrderRef
    lines: list[OrderedLine]
    units_backordered: int
    eta: date | None = Field(default=None, description="the latest ETA of the order's lines")


class WaitingOrder(BaseModel):
    order_id: int
    variant_id: int
    quantity: int
    ordered_at: datetime


class RestockedPayload(AssignmentPayload):
    level_before: int
    level_after: int = Field(description="after setting the waiting units aside")
    units_waiting: int
    orders: list[WaitingOrder] = Field(description="the waiting orders, oldest first")


class Customer(BaseModel):
    email: str | None = Field(default=None, description="the order's billing e-mail address")
    name: str | None = None


class OrderEtaChangedPayload(AssignmentPayload):
    order_id: int
    ordered_at: datetime
    customer: Customer
    units_waiting: int = Field(description="this order's units still waiting for stock")
    previous_eta: date | None = Field(description="the ETA before the change")


def order_eta_changed(
    row: BackorderAssignmentRow,
    settings: BackorderSettings,
    lines: list[BackorderLineRow],
    previous: date | None,
) -> list[OrderEtaChangedPayload]:
    """One payload per order still waiting on ``row`` (oldest first)."""
    by_order: dict[int, list[BackorderLineRow]] = {}
    for line in lines:
        by_order.setdefault(line.order_id, []).append(line)
    details, product = info(row, settings), product_ref(row)
    return [
        OrderEtaChangedPayload(
            product=product,
            backorder=details,
            order_id=order_id,
            ordered_at=group[0].ordered_at,
            customer=Customer(email=group[0].customer_email, name=group[0].customer_name),
            units_waiting=sum(li.open_units for li in group),
            previous_eta=previous,
        )
        for order_id, group in by_order.items()
    ]


def info(row: BackorderAssignmentRow, settings: BackorderSettings) -> BackorderInfo:
    message = eta.message_for(
        row.message, row.eta, settings.default_message, settings.undated_message
    )
    return BackorderInfo(
        assignment_id=row.id,
        product_id=row.product_id,
        variant_id=row.variant_id,
        status=row.status,
        limit=row.backorder_limit,
        limit_left=row.limit_left,
        units_backordered=row.units,
        message=message,
        message_rendered=eta.render(message, row.eta, settings.date_format),
        eta=row.eta,
        eta_source=row.eta_source,
        back_in_stock_date=row.back_in_stock_date,
        incoming_quantity=row.incoming_quantity,
    )


def product_ref(row: BackorderAssignmentRow) -> ProductRef:
    return ProductRef(id=row.product_id, name=row.product_name, sku=row.sku)


def base(row: BackorderAssignmentRow, settings: BackorderSettings) -> dict[str, Any]:
    return {"product": product_ref(row), "backorder": info(row, settings)}


def ordered_line(
    line: BackorderLineRow, row: BackorderAssignmentRow, settings: BackorderSettings
) -> OrderedLine:
    details = info(row, settings)
    return OrderedLine(
        assignment_id=row.id,
        product_id=line.product_id,
        variant_id=line.variant_id,
        product_name=row.product_name,
        quantity=line.quantity,
        backordered=line.backordered,
        over_limit=line.over_limit,
        covered=line.covered,
        eta=row.eta if line.covered else None,
        message_rendered=details.message_rendered,
    )


def key(workspace: str, store: str, *parts: object) -> str:
    text = ":".join(["backorder", workspace, store, *(str(p) for p in parts)])
    return text[:200]


# -- samples ---------------------------------------------------------------------------------------

_PRODUCT = {"id": 111, "name": "Cat Eye Sunglasses", "sku": "SUN-CATEYE"}
_INFO: dict[str, Any] = {
    "assignment_id": "bko_01jd0000000000000000000000",
    "product_id": 111,
    "variant_id": None,
    "status": "active",
    "limit": 50,
    "limit_left": 50,
    "units_backordered": 0,
    "message": "Back soon: ships by %%DATE%%",
    "message_rendered": "Back soon: ships by December 11, 2026",
    "eta": "2026-12-11",
    "eta_source": "back_in_stock_date",
    "back_in_stock_date": "2026-12-11",
    "incoming_quantity": 80,
}
_BASE = {"product": _PRODUCT, "backorder": _INFO}
_CLOSED = {**_INFO, "status": "closed", "limit_left": 0, "units_backordered": 50}
_ORDER = {"id": 150, "status_id": 11, "date_created": "2026-11-28T10:00:00+00:00"}
_LINE = {
    "assignment_id": _INFO["assignment_id"],
    "product_id": 111,
    "variant_id": 301,
    "product_name": "Cat Eye Sunglasses",
    "quantity": 2,
    "backordered": 2,
    "over_limit": 0,
    "covered": True,
    "eta": "2026-12-11",
    "message_rendered": _INFO["message_rendered"],
}

TRIGGERS: tuple[TriggerSpec, ...] = (
    TriggerSpec(
        type=ASSIGNED,
        description="A product (or variant) was put on backorder.",
        payload=AssignmentPayload,
        sample=_BASE,
    ),
    TriggerSpec(
        type=UPDATED,
        description="A backorder's limit, message, dates or incoming stock changed, "
        "or it reopened because units were given back.",
        payload=UpdatedPayload,
        sample={**_BASE, "changes": ["limit"], "reason": "update"},
    ),
    TriggerSpec(
        type=UNASSIGNED,
        description="A backorder ended (unassigned, or restocked); the product is back as it was.",
        payload=UnassignedPayload,
        sample={
            **_BASE,
            "backorder": {**_CLOSED, "status": "ended"},
            "reason": "unassigned",
            "restored": {"inventory_tracking": "product", "availability": "available"},
        },
    ),
    TriggerSpec(
        type=LIMIT_REACHED,
        description="The backorder limit is used up; backorder switched itself off on the store.",
        payload=LimitReachedPayload,
        sample={**_BASE, "backorder": _CLOSED, "order_id": 199},
    ),
    TriggerSpec(
        type=DATE_REACHED,
        description="The back-in-stock date came; backorder switched itself off on the store.",
        payload=DateReachedPayload,
        sample={**_BASE, "backorder": {**_INFO, "status": "closed"}, "date": "2026-12-11"},
    ),
    TriggerSpec(
        type=ORDERED,
        description="An order includes backordered units (one event per order).",
        payload=OrderedPayload,
        sample={"order": _ORDER, "lines": [_LINE], "units_backordered": 2, "eta": "2026-12-11"},
    ),
    TriggerSpec(
        type=ORDER_ETA_CHANGED,
        description="A backorder's expected ship date moved: one event for each order still "
        "waiting, with its customer (to tell them the new date).",
        payload=OrderEtaChangedPayload,
        sample={
            **_BASE,
            "order_id": 150,
            "ordered_at": "2026-11-28T10:00:00+00:00",
            "customer": {"email": "jane@example.com", "name": "Jane Doe"},
            "units_waiting": 2,
            "previous_eta": "2026-12-04",
        },
    ),
    TriggerSpec(
        type=RESTOCKED,
        description="Stock came back for a backordered product: the waiting "
        "orders, oldest first; the backorder has ended.",
        payload=RestockedPayload,
        sample={
            **_BASE,
            "backorder": {**_CLOSED, "status": "ended"},
            "level_before": 80,
            "level_after": 30,
            "units_waiting": 50,
            "orders": [
                {
                    "order_id": 150,
                    "variant_id": 301,
                    "quantity": 2,
                    "ordered_at": "2026-11-28T10:00:00+00:00",
                }
            ],
        },
    ),
)
