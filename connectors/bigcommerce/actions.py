"""BigCommerce actions on the catalog and stock (orders, customers and raw requests are in
``actions_store.py``). Each reads the current state first and writes only what differs, so a
step retried or replayed with the same idempotency key (run, step) writes at most once —
BigCommerce has no idempotency keys. Relative stock adjustments, which cannot be checked that
way, are recorded in the write log under the step's key and skipped when already made.

Every write is recorded in the write log before it is sent, so the webhook it causes is
attributed to the run (``caused_by``) and a recipe cannot trigger itself. The store is the
triggering event's (``ctx.store``) unless ``store`` names another store of the workspace.
Client errors keep their classes: 429/5xx/no response are retryable, other 4xx permanent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from connectors.bigcommerce.models import WriteLog
from connectors.bigcommerce.payloads import product_payload
from connectors.bigcommerce.stores import BigCommerceStores, StoreHandle
from engine import ActionContext, ActionSpec, NotFoundError, Params, PermanentError, RetryPolicy

WRITE_RETRY = RetryPolicy(tries=5, backoff=5.0, cap=300.0)


class Target(Params):
    store: str | None = Field(
        default=None, description="hash of another store of this workspace (default: the event's)"
    )


async def store_for(ctx: ActionContext, params: Target) -> StoreHandle:
    store_hash = params.store or ctx.store
    if not store_hash:
        raise PermanentError("the event names no store: set `store` to a store hash")
    try:
        return await ctx.services.get(BigCommerceStores).get(ctx.workspace, store_hash)
    except NotFoundError:
        raise PermanentError(f"store {store_hash!r} is not connected to this workspace") from None


async def record_write(
    ctx: ActionContext,
    handle: StoreHandle,
    targets: list[tuple[str, int]],
    fields: list[str],
    detail: dict[str, Any] | None = None,
) -> list[str]:
    writes = ctx.services.get(WriteLog)
    caused = ctx.event.caused_by
    records = [
        writes.new(
            store_id=handle.id,
            kind=kind,
            ref=ref,
            fields=tuple(fields),
            run_id=ctx.run_id,
            recipe_uid=ctx.recipe_uid,
            depth=ctx.event.depth,
            chain=caused.chain if caused else (),
            idempotency_key=ctx.idempotency_key,
            detail=detail,
        )
        for kind, ref in targets
    ]
    await writes.record(records)
    return [r.id for r in records]


# -- bigcommerce.product.update -----------------------------------------------------------------


class ProductUpdateParams(Target):
    product_id: int = Field(gt=0)
    availability: Literal["available", "disabled", "preorder"] | None = None
    availability_description: str | None = Field(default=None, max_length=255)
    inventory_tracking: Literal["none", "product", "variant"] | None = None
    is_visible: bool | None = None
    preorder_message: str | None = Field(default=None, max_length=255)
    preorder_release_date: datetime | None = None
    is_preorder_only: bool | None = None
    custom_fields: dict[str, str] = Field(
        default_factory=dict, description="name → value; fields are created or updated by name"
    )
    categories: list[int] | None = Field(default=None, description="replace the categories")
    add_categories: list[int] = Field(default_factory=list)
    remove_categories: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fields(self) -> ProductUpdateParams:
        for name, value in self.custom_fields.items():
            if not 1 <= len(name) <= 250 or not 1 <= len(value) <= 250:
                raise ValueError(f"custom field {name!r}: name and value need 1 to 250 characters")
        return self


class ProductUpdateOutput(BaseModel):
    product_id: int
    changed: bool
    fields: list[str]
    product: dict[str, Any]


_SIMPLE = (
    "availability",
    "availability_description",
    "inventory_tracking",
    "is_visible",
    "preorder_message",
    "is_preorder_only",
)


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def product_changes(current: dict[str, Any], params: ProductUpdateParams) -> dict[str, Any]:
    """The PUT body that brings ``current`` to what ``params`` asks (empty if it already is)."""
    body: dict[str, Any] = {}
    for name in _SIMPLE:
        wanted = getattr(params, name)
        if wanted is not None and current.get(name) != wanted:
            body[name] = wanted
    date = params.preorder_release_date
    if date is not None and _when(current.get("preorder_release_date")) != date:
        body["preorder_release_date"] = date.isoformat()
    have = [int(c) for c in current.get("categories") or []]
    want = set(params.categories if params.categories is not None else have)
    want = (want | set(params.add_categories)) - set(params.remove_categories)
    if want != set(have):
        body["categories"] = sorted(want)
    existing = {
        str(f.get("name")): f for f in current.get("custom_fields") or [] if isinstance(f, dict)
    }
    fields: list[dict[str, Any]] = []
    for name, value in params.custom_fields.items():
        found = existing.get(name)
        if found is None:
            fields.append({"name": name, "value": value})
        elif str(found.get("value")) != value:
            fields.append({"id": int(found["id"]), "name": name, "value": value})
    if fields:
        body["custom_fields"] = fields
    return body


async def update_product(ctx: ActionContext, params: ProductUpdateParams) -> ProductUpdateOutput:
    handle = await store_for(ctx, params)
    current = await handle.client.get_product(params.product_id, include="custom_fields")
    body = product_changes(current, params)
    if not body:
        return ProductUpdateOutput(
            product_id=params.product_id, changed=False, fields=[], product=product_payload(current)
        )
    await record_write(ctx, handle, [("product", params.product_id)], sorted(body))
    updated = await handle.client.update_product(params.product_id, body)
    merged = {**current, **updated, "custom_fields": current.get("custom_fields") or []}
    return ProductUpdateOutput(
        product_id=params.product_id,
        changed=True,
        fields=sorted(body),
        product=product_payload(merged),
    )


# -- bigcommerce.inventory.adjust ---------------------------------------------------------------


class InventoryParams(Target):
    product_id: int = Field(gt=0)
    variant_id: int | None = Field(default=None, gt=0, description="for a variant's own stock")
    mode: Literal["absolute", "relative"] = "absolute"
    quantity: int = Field(description="the new level (absolute) or the change (relative)")
    location_id: int = Field(default=1, gt=0)
    reason: str | None = Field(default=None, max_length=255)

    @model_validator(mode="after")
    def _quantity(self) -> InventoryParams:
        if self.mode == "absolute" and not 0 <= self.quantity <= 2_147_483_647:
            raise ValueError("an absolute quantity is between 0 and 2147483647")
        return self


class InventoryOutput(BaseModel):
    product_id: int
    variant_id: int | None
    mode: str
    previous: int
    level: int = Field(description="the level expected after the adjustment")
    applied: bool
    transaction_id: str | None = None


async def _level(handle: StoreHandle, params: InventoryParams) -> int:
    product = await handle.client.get_product(params.product_id, include="variants")
    if params.variant_id is None:
        return int(product.get("inventory_level") or 0)
    for variant in product.get("variants") or []:
        if int(variant.get("id", 0)) == params.variant_id:
            return int(variant.get("inventory_level") or 0)
    raise PermanentError(f"product {params.product_id} has no variant {params.variant_id}")


async def adjust_inventory(ctx: ActionContext, params: InventoryParams) -> InventoryOutput:
    handle = await store_for(ctx, params)
    writes = ctx.services.get(WriteLog)
    kind, ref = (
        ("variant_stock", params.variant_id)
        if params.variant_id
        else ("product_stock", params.product_id)
    )
    item: dict[str, Any] = {"location_id": params.location_id, "quantity": params.quantity}
    item.update(
        {"variant_id": params.variant_id}
        if params.variant_id
        else {"product_id": params.product_id}
    )
    current = await _level(handle, params)
    out = {"product_id": params.product_id, "variant_id": params.variant_id, "mode": params.mode}
    if params.mode == "absolute":
        if current == params.quantity:
            return InventoryOutput(**out, previous=current, level=current, applied=False)
        await record_write(
            ctx, handle, [(kind, ref)], ["inventory_level"], {"target": params.quantity}
        )
        ids = await handle.client.adjust_inventory_absolute([item], params.reason)
        return InventoryOutput(
            **out,
            previous=current,
            level=params.quantity,
            applied=True,
            transaction_id=ids[0] if ids else None,
        )
    earlier = writes.by_key(ctx.idempotency_key, kind, ref)
    if earlier is not None:
        status, detail = earlier
        before = int(detail.get("before", current))
        if status == "done" or current != before:  # made, or stock moved since: never twice
            return InventoryOutput(
                **out,
                previous=before,
                level=before + params.quantity,
                applied=False,
                transaction_id=detail.get("transaction_id"),
            )
    ids_ = await record_write(ctx, handle, [(kind, ref)], ["inventory_level"], {"before": current})
    ids = await handle.client.adjust_inventory_relative([item], params.reason)
    txn = ids[0] if ids else None
    await writes.mark(ids_, "done", {"before": current, "transaction_id": txn})
    return InventoryOutput(
        **out, previous=current, level=current + params.quantity, applied=True, transaction_id=txn
    )


# -- bigcommerce.variant.update -----------------------------------------------------------------


class VariantParams(Target):
    product_id: int = Field(gt=0)
    variant_id: int = Field(gt=0)
    purchasing_disabled: bool | None = None
    purchasing_disabled_message: str | None = Field(default=None, max_length=255)
    inventory_level: int | None = Field(default=None, ge=0, le=2_147_483_647)
    inventory_warning_level: int | None = Field(default=None, ge=0, le=2_147_483_647)


class VariantOutput(BaseModel):
    product_id: int
    variant_id: int
    changed: bool
    fields: list[str]
    variant: dict[str, Any]


async def update_variant(ctx: ActionContext, params: VariantParams) -> VariantOutput:
    handle = await store_for(ctx, params)
    path = f"/catalog/products/{params.product_id}/variants/{params.variant_id}"
    body = await handle.client.request("GET", path)
    current: dict[str, Any] = body.get("data") or {} if isinstance(body, dict) else {}
    names = (
        "purchasing_disabled",
        "purchasing_disabled_message",
        "inventory_level",
        "inventory_warning_level",
    )
    changes = {
        n: getattr(params, n)
        for n in names
        if getattr(params, n) is not None and current.get(n) != getattr(params, n)
    }
    ids = (params.product_id, params.variant_id)
    if not changes:
        return VariantOutput(
            product_id=ids[0], variant_id=ids[1], changed=False, fields=[], variant=current
        )
    targets = [("variant", params.variant_id)]
    if "inventory_level" in changes:
        targets += [("variant_stock", params.variant_id), ("product_stock", params.product_id)]
    await record_write(ctx, handle, targets, sorted(changes))
    updated = await handle.client.update_variant(params.product_id, params.variant_id, changes)
    return VariantOutput(
        product_id=ids[0], variant_id=ids[1], changed=True, fields=sorted(changes), variant=updated
    )


CATALOG_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="bigcommerce.product.update",
        description="Change a product's availability, visibility, pre-order settings, "
        "custom fields (by name) and categories; only what differs is sent.",
        params=ProductUpdateParams,
        output=ProductUpdateOutput,
        handler=update_product,
        writes="The product's fields in the BigCommerce catalog.",
        retry=WRITE_RETRY,
    ),
    ActionSpec(
        name="bigcommerce.inventory.adjust",
        description="Set (absolute) or change (relative) a product's or variant's stock "
        "through the Inventory API.",
        params=InventoryParams,
        output=InventoryOutput,
        handler=adjust_inventory,
        writes="Stock levels in BigCommerce (an inventory adjustment).",
        retry=WRITE_RETRY,
    ),
    ActionSpec(
        name="bigcommerce.variant.update",
        description="Disable or enable purchasing of a variant (with a message), or set "
        "its stock and warning level.",
        params=VariantParams,
        output=VariantOutput,
        handler=update_variant,
        writes="The variant's fields in the BigCommerce catalog.",
        retry=WRITE_RETRY,
    ),
)
