"""``backorder.assign``, ``backorder.update`` and ``backorder.unassign``.

The store is the triggering event's (``ctx.store``) unless ``store`` names another store of the
workspace. A retried or replayed step is harmless: assignments are found by product and
variant, the store is written only where it differs, and events carry dedup keys.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from connectors.bigcommerce.actions import WRITE_RETRY, record_write
from connectors.bigcommerce.models import WriteLog
from connectors.bigcommerce.stores import BigCommerceStores
from engine import ActionContext, ActionSpec, NotFoundError, Params

from . import stock
from .config import BackorderSettings
from .events import info
from .service import Backorders, Change


class Target(Params):
    product_id: int = Field(gt=0)
    variant_id: int | None = Field(
        default=None, gt=0, description="one variant (products that track stock by variant)"
    )
    store: str | None = Field(default=None, description="store hash (default: the event's)")


async def note_store_write(ctx: ActionContext, params: Target) -> None:
    """Enter the coming store write in the BigCommerce connector's write log, as its own
    actions do, so the webhooks it causes carry this run (``caused_by``): a recipe never
    triggers itself through a backorder it set, and chains stop at the depth limit. The entry
    is made even if the store turns out to need no change (nothing is then written)."""
    stores = ctx.services.find(BigCommerceStores)
    store = params.store or ctx.store
    if ctx.services.find(WriteLog) is None or stores is None or not store:
        return
    try:
        handle = await stores.get(ctx.workspace, store)
    except NotFoundError:
        return  # the action itself reports the missing store
    targets = [("product", params.product_id), ("product_stock", params.product_id)]
    if params.variant_id is not None:
        targets += [("variant", params.variant_id), ("variant_stock", params.variant_id)]
    await record_write(ctx, handle, targets, ["backorder"])


class AssignParams(Target):
    limit: int = Field(ge=1, le=1_000_000, description="most units that may be backordered")
    message: str = Field(
        default="",
        max_length=255,
        description="what shoppers see; %%DATE%% becomes the ETA (default message when empty)",
    )
    back_in_stock_date: date | None = Field(
        default=None, description="stock is expected that day; backorder ends then"
    )
    incoming_quantity: int | None = Field(default=None, ge=0, description="units on their way")
    lead_time_days: int | None = Field(
        default=None, ge=0, le=365, description="ETA from incoming stock: today + this many days"
    )
    release_on_cancel: bool | None = Field(
        default=None, description="cancelled or refunded orders give their units back"
    )
    reserve_on_restock: bool | None = Field(
        default=None, description="at restock, take the waiting units off the new stock level"
    )


class UpdateParams(Target):
    limit: int | None = Field(default=None, ge=1, le=1_000_000)
    message: str | None = Field(default=None, max_length=255)
    back_in_stock_date: date | None = Field(default=None, description="null removes the date")
    incoming_quantity: int | None = Field(default=None, ge=0, description="null removes it")
    lead_time_days: int | None = Field(default=None, ge=0, le=365)
    release_on_cancel: bool | None = None
    reserve_on_restock: bool | None = None


class AssignmentOutput(BaseModel):
    assignment_id: str
    product_id: int
    variant_id: int | None
    status: str = Field(description="armed (stock left) | active | closed | ended")
    created: bool = Field(description="this step created the assignment")
    changed: bool = Field(description="this step changed the assignment")
    changes: list[str]
    limit: int
    limit_left: int
    units_backordered: int
    message: str
    message_rendered: str
    eta: date | None
    eta_source: str
    back_in_stock_date: date | None
    incoming_quantity: int | None
    store_writes: int = Field(description="requests that changed the store")


class UnassignOutput(BaseModel):
    unassigned: bool = Field(description="false when nothing was assigned")
    assignment_id: str | None = None
    product_id: int
    variant_id: int | None = None
    units_backordered: int = 0
    restored: dict[str, Any] = Field(default_factory=dict)


def _config(params: AssignParams, settings: BackorderSettings) -> dict[str, Any]:
    return {
        "backorder_limit": params.limit,
        "message": params.message,
        "back_in_stock_date": params.back_in_stock_date,
        "incoming_quantity": params.incoming_quantity,
        "lead_time_days": _or(params.lead_time_days, settings.lead_time_days),
        "release_on_cancel": _or(params.release_on_cancel, settings.release_on_cancel),
        "reserve_on_restock": _or(params.reserve_on_restock, settings.reserve_on_restock),
    }


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _output(change: Change, settings: BackorderSettings) -> AssignmentOutput:
    details = info(change.row, settings)
    return AssignmentOutput(
        assignment_id=details.assignment_id,
        product_id=details.product_id,
        variant_id=details.variant_id,
        status=details.status,
        created=change.created,
        changed=bool(change.created or change.changes or change.reached or change.reopened),
        changes=change.changes,
        limit=details.limit,
        limit_left=details.limit_left,
        units_backordered=details.units_backordered,
        message=details.message,
        message_rendered=details.message_rendered,
        eta=details.eta,
        eta_source=details.eta_source,
        back_in_stock_date=details.back_in_stock_date,
        incoming_quantity=details.incoming_quantity,
        store_writes=change.applied.requests,
    )


async def assign(ctx: ActionContext, params: AssignParams) -> AssignmentOutput:
    service = ctx.services.get(Backorders)
    await note_store_write(ctx, params)
    change = await service.assign(
        ctx.workspace,
        params.store or ctx.store,
        params.product_id,
        params.variant_id,
        _config(params, service.settings),
        key=ctx.idempotency_key,
        emit=ctx.emit,
    )
    return _output(change, service.settings)


_UPDATE_NAMES = {
    "limit": "backorder_limit",
    "message": "message",
    "back_in_stock_date": "back_in_stock_date",
    "incoming_quantity": "incoming_quantity",
    "lead_time_days": "lead_time_days",
    "release_on_cancel": "release_on_cancel",
    "reserve_on_restock": "reserve_on_restock",
}
_NULLABLE = frozenset({"back_in_stock_date", "incoming_quantity"})


async def update(ctx: ActionContext, params: UpdateParams) -> AssignmentOutput:
    service = ctx.services.get(Backorders)
    await note_store_write(ctx, params)
    settings = service.settings
    defaults = {
        "message": "",
        "lead_time_days": settings.lead_time_days,
        "release_on_cancel": settings.release_on_cancel,
        "reserve_on_restock": settings.reserve_on_restock,
    }
    values: dict[str, Any] = {}
    for name in params.model_fields_set & set(_UPDATE_NAMES):
        value = getattr(params, name)
        if value is None and name not in _NULLABLE:
            if name not in defaults:
                continue
            value = defaults[name]
        values[_UPDATE_NAMES[name]] = value
    change = await service.update(
        ctx.workspace,
        params.store or ctx.store,
        params.product_id,
        params.variant_id,
        values,
        emit=ctx.emit,
    )
    return _output(change, settings)


async def unassign(ctx: ActionContext, params: Target) -> UnassignOutput:
    service = ctx.services.get(Backorders)
    await note_store_write(ctx, params)
    change = await stock.unassign(
        service,
        ctx.workspace,
        params.store or ctx.store,
        params.product_id,
        params.variant_id,
        emit=ctx.emit,
    )
    if change is None:
        return UnassignOutput(
            unassigned=False, product_id=params.product_id, variant_id=params.variant_id
        )
    return UnassignOutput(
        unassigned=True,
        assignment_id=change.row.id,
        product_id=params.product_id,
        variant_id=params.variant_id,
        units_backordered=change.row.units,
        restored=change.applied.product,
    )


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="backorder.assign",
        description="Put a product (or one variant) on backorder: shoppers can buy it at zero "
        "stock, up to a limit, with a message giving the expected ship date",
        params=AssignParams,
        output=AssignmentOutput,
        handler=assign,
        retry=WRITE_RETRY,
        writes="the product's availability, inventory tracking, pre-order message and date, "
        "a marker custom field, and variants' purchasing flags",
    ),
    ActionSpec(
        name="backorder.update",
        description="Change a backorder's limit, message, back-in-stock date or incoming stock",
        params=UpdateParams,
        output=AssignmentOutput,
        handler=update,
        retry=WRITE_RETRY,
        writes="the product's pre-order message and date (and availability when the limit "
        "changes whether it may sell)",
    ),
    ActionSpec(
        name="backorder.unassign",
        description="End a backorder and restore the product as it was before",
        params=Target,
        output=UnassignOutput,
        handler=unassign,
        retry=WRITE_RETRY,
        writes="the product's fields back to what they were before the assignment",
    ),
)
