"""``report.backlog``: the backlog and backorder report as a step's output, ready to e-mail
(``text`` for the body, ``csv`` as an attachment named ``csv_filename``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from connectors.backorder.config import client_for, provider_of
from engine import ActionContext, ActionSpec, Database, Params

from . import render
from .backlog import AgeBucket, BackorderedProduct, DemandRow, StatusCount, build_report


class BacklogParams(Params):
    store: str | None = Field(default=None, description="store hash (default: the event's)")
    statuses: list[int] | None = Field(
        default=None, description="order status ids counted as backlog (default: see the docs)"
    )
    window_days: int = Field(default=30, ge=1, le=365, description="demand window")
    top: int = Field(default=10, ge=1, le=100, description="rows of the demand ranking")
    max_rows: int = Field(default=1000, ge=1, le=10_000, description="orders in the CSV")
    table_rows: int = Field(default=20, ge=0, le=200, description="orders listed in the text")


class BacklogOutput(BaseModel):
    count: int
    value: float
    currency: str
    oldest_order_id: int | None
    oldest_age_days: float | None
    units_backordered: int
    products_backordered: int
    by_status: list[StatusCount]
    by_age: list[AgeBucket]
    backorders: list[BackorderedProduct]
    demand: list[DemandRow]
    text: str = Field(description="a plain-text summary with tables, for an e-mail body")
    csv: str = Field(description="the backlog orders, oldest first")
    csv_filename: str
    csv_truncated: bool
    backorders_csv: str
    requests: int = Field(description="BigCommerce API requests the report made")


async def backlog(ctx: ActionContext, params: BacklogParams) -> BacklogOutput:
    store = params.store or ctx.store
    client = await client_for(provider_of(ctx.services), ctx.workspace, store)
    assert store is not None
    report = await build_report(
        client,
        ctx.services.get(Database),
        ctx.workspace,
        store,
        ctx.clock.now(),
        statuses=tuple(params.statuses) if params.statuses else None,
        window_days=params.window_days,
        top=params.top,
    )
    oldest = report.oldest
    return BacklogOutput(
        count=report.count,
        value=report.value,
        currency=report.currency,
        oldest_order_id=oldest.id if oldest else None,
        oldest_age_days=oldest.age_days if oldest else None,
        units_backordered=report.units_backordered,
        products_backordered=len(report.backorders),
        by_status=report.by_status,
        by_age=report.by_age,
        backorders=report.backorders,
        demand=report.demand,
        text=render.text(report, max_orders=params.table_rows),
        csv=render.orders_csv(report, max_rows=params.max_rows),
        csv_filename=render.filename(report),
        csv_truncated=report.count > params.max_rows,
        backorders_csv=render.backorders_csv(report),
        requests=report.requests,
    )


ACTIONS = (
    ActionSpec(
        name="report.backlog",
        description="The store's unfulfilled orders by status and age, backordered products "
        "with limits and ETAs, and what customers keep ordering while sold out",
        params=BacklogParams,
        output=BacklogOutput,
        handler=backlog,
        timeout=120.0,
    ),
)
