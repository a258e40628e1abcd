"""BigCommerce actions on orders and customers, and guarded raw requests to the store's API.

Like the catalog actions (``actions.py``), each reads the current state and writes only what
differs, records its write in the write log first, and keeps the client's error classes.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from connectors.bigcommerce.actions import WRITE_RETRY, Target, record_write, store_for
from engine import ActionContext, ActionSpec, PermanentError, RetryPolicy

# -- orders --------------------------------------------------------------------------------------


class OrderStatusParams(Target):
    order_id: int = Field(gt=0)
    status_id: int | None = Field(default=None, ge=0, le=100)
    status: str | None = Field(default=None, min_length=1, description="a status name")

    @model_validator(mode="after")
    def _one(self) -> OrderStatusParams:
        if (self.status_id is None) == (self.status is None):
            raise ValueError("give exactly one of status_id and status")
        return self


class OrderStatusOutput(BaseModel):
    order_id: int
    changed: bool
    previous_status_id: int
    status_id: int
    status: str


async def set_order_status(ctx: ActionContext, params: OrderStatusParams) -> OrderStatusOutput:
    handle = await store_for(ctx, params)
    statuses = await handle.order_statuses()
    target = params.status_id
    if params.status is not None:
        by_name = {name.lower(): sid for sid, name in statuses.items()}
        target = by_name.get(params.status.strip().lower())
        if target is None:
            raise PermanentError(
                f"unknown order status {params.status!r}; known: {', '.join(statuses.values())}"
            )
    assert target is not None
    order = await handle.client.get_order(params.order_id)
    previous = int(order.get("status_id", -1))
    out = {
        "order_id": params.order_id,
        "previous_status_id": previous,
        "status_id": target,
        "status": statuses.get(target, str(target)),
    }
    if previous == target:
        return OrderStatusOutput(**out, changed=False)
    await record_write(ctx, handle, [("order", params.order_id)], ["status_id"])
    await handle.client.update_order(params.order_id, {"status_id": target})
    return OrderStatusOutput(**out, changed=True)


class OrderNoteParams(Target):
    order_id: int = Field(gt=0)
    note: str = Field(min_length=1, max_length=2000)


class OrderNoteOutput(BaseModel):
    order_id: int
    added: bool
    tag: str
    staff_notes: str


async def add_order_note(ctx: ActionContext, params: OrderNoteParams) -> OrderNoteOutput:
    handle = await store_for(ctx, params)
    tag = "[sous:" + hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:10] + "]"
    order = await handle.client.get_order(params.order_id)
    notes = str(order.get("staff_notes") or "")
    if tag in notes:
        return OrderNoteOutput(order_id=params.order_id, added=False, tag=tag, staff_notes=notes)
    notes = (notes.rstrip() + "\n" if notes.strip() else "") + f"{params.note.strip()} {tag}"
    await record_write(ctx, handle, [("order", params.order_id)], ["staff_notes"])
    await handle.client.update_order(params.order_id, {"staff_notes": notes})
    return OrderNoteOutput(order_id=params.order_id, added=True, tag=tag, staff_notes=notes)


# -- bigcommerce.customer.set_group -------------------------------------------------------------


class CustomerGroupParams(Target):
    customer_id: int = Field(gt=0)
    group_id: int | None = Field(default=None, ge=0, description="0 removes the customer's group")
    group: str | None = Field(default=None, min_length=1, description="a group name")

    @model_validator(mode="after")
    def _one(self) -> CustomerGroupParams:
        if (self.group_id is None) == (self.group is None):
            raise ValueError("give exactly one of group_id and group")
        return self


class CustomerGroupOutput(BaseModel):
    customer_id: int
    changed: bool
    previous_group_id: int
    group_id: int


async def set_customer_group(
    ctx: ActionContext, params: CustomerGroupParams
) -> CustomerGroupOutput:
    handle = await store_for(ctx, params)
    target = params.group_id
    if params.group is not None:
        groups = await handle.customer_groups()
        target = {name.lower(): gid for gid, name in groups.items()}.get(
            params.group.strip().lower()
        )
        if target is None:
            raise PermanentError(
                f"unknown customer group {params.group!r}; known: {', '.join(groups.values())}"
            )
    assert target is not None
    customer = await handle.client.request("GET", f"/customers/{params.customer_id}", version="v2")
    previous = int((customer or {}).get("customer_group_id") or 0)
    out = {"customer_id": params.customer_id, "previous_group_id": previous, "group_id": target}
    if previous == target:
        return CustomerGroupOutput(**out, changed=False)
    await record_write(ctx, handle, [("customer", params.customer_id)], ["customer_group_id"])
    await handle.client.update_customer_v2(params.customer_id, {"customer_group_id": target})
    return CustomerGroupOutput(**out, changed=True)


# -- bigcommerce.request ------------------------------------------------------------------------

_PATH = re.compile(r"^/(v2|v3)((?:/[A-Za-z0-9_\-.,:]+)+)$")
_RESOURCES = (
    (re.compile(r"^/catalog/products/(\d+)/variants/(\d+)"), "variant", 2),
    (re.compile(r"^/catalog/products/(\d+)"), "product", 1),
    (re.compile(r"^/orders/(\d+)"), "order", 1),
    (re.compile(r"^/customers/(\d+)"), "customer", 1),
)


class RequestParams(Target):
    method: Literal["GET", "POST", "PUT", "DELETE"] = "GET"
    path: str = Field(
        description="relative to the store's API: /v3/catalog/products/12, /v2/orders/7"
    )
    query: dict[str, str | int | float | bool | list[str | int]] = Field(default_factory=dict)
    body: Any = None

    @field_validator("path")
    @classmethod
    def _relative(cls, path: str) -> str:
        # A field's own check: at load time a templated path ("/v3/catalog/products/{{ ... }}")
        # is skipped here and checked once rendered.
        if _PATH.match(path) is None or any(seg in (".", "..") for seg in path.split("/")):
            raise ValueError(
                "path must be relative to the store's API under /v2 or /v3 "
                "(no host, query string, '..' or escapes)"
            )
        return path

    @model_validator(mode="after")
    def _guard(self) -> RequestParams:
        if self.method == "GET" and self.body is not None:
            raise ValueError("a GET request has no body")
        return self


class RequestOutput(BaseModel):
    status: int
    body: Any = None


def _touched(rest: str, body: Any) -> list[tuple[str, int]]:
    """Resources a raw write names, for the write log (so loops through it can be stopped)."""
    for pattern, kind, group in _RESOURCES:
        found = pattern.match(rest)
        if found:
            return [(kind, int(found.group(group)))]
    items = body.get("items") if isinstance(body, dict) and rest.startswith("/inventory/") else None
    out: list[tuple[str, int]] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("variant_id"):
            out.append(("variant_stock", int(item["variant_id"])))
        elif isinstance(item, dict) and item.get("product_id"):
            out.append(("product_stock", int(item["product_id"])))
    return out


async def raw_request(ctx: ActionContext, params: RequestParams) -> RequestOutput:
    handle = await store_for(ctx, params)
    match = _PATH.match(params.path)
    assert match is not None
    version: Literal["v2", "v3"] = "v2" if match.group(1) == "v2" else "v3"
    rest = match.group(2)
    if params.method != "GET" and (touched := _touched(rest, params.body)):
        await record_write(ctx, handle, touched, ["*"])
    response = await handle.client.send(
        params.method, rest, version=version, params=params.query, json=params.body
    )
    try:
        data = response.json() if response.content else None
    except ValueError:
        data = response.text
    return RequestOutput(status=response.status_code, body=data)


STORE_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="bigcommerce.order.set_status",
        description="Move an order to a status, by id or by name.",
        params=OrderStatusParams,
        output=OrderStatusOutput,
        handler=set_order_status,
        writes="The order's status in BigCommerce (the customer may be e-mailed).",
        retry=WRITE_RETRY,
    ),
    ActionSpec(
        name="bigcommerce.order.add_note",
        description="Append a staff note to an order (once per step, marked with a tag).",
        params=OrderNoteParams,
        output=OrderNoteOutput,
        handler=add_order_note,
        writes="The order's staff notes in BigCommerce.",
        retry=WRITE_RETRY,
    ),
    ActionSpec(
        name="bigcommerce.customer.set_group",
        description="Put a customer in a customer group, by id or by name.",
        params=CustomerGroupParams,
        output=CustomerGroupOutput,
        handler=set_customer_group,
        writes="The customer's group in BigCommerce.",
        retry=WRITE_RETRY,
    ),
    ActionSpec(
        name="bigcommerce.request",
        description="A request to the store's own REST API (GET, POST, PUT, DELETE under "
        "/v2 or /v3). Not made idempotent and not retried (a step's `retry` "
        "can ask for it): prefer the specific actions.",
        params=RequestParams,
        output=RequestOutput,
        handler=raw_request,
        writes="Whatever a POST, PUT or DELETE to the store's API changes; GET only reads.",
        is_write=lambda params: params.method != "GET",
        retry=RetryPolicy(tries=1),
    ),
)
