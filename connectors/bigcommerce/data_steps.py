"""Data steps: typed reads from a connected store, whose outputs feed later steps.

* ``bigcommerce.product.get``, ``bigcommerce.variant.get``, ``bigcommerce.order.get`` (with its
  lines), ``bigcommerce.customer.get``: one resource by id; ``found`` is false (and the step
  succeeds) when the store has no such resource, so a later step can branch on it.
* ``bigcommerce.orders.list``, ``bigcommerce.products.list``: one page of a filtered list, at
  most 250 items (``limit``), with ``more`` and ``next_page`` to ask for the next in a later
  step. One request each: a list never eats the store's quota past one call.
* ``bigcommerce.orders.count``: how many orders match the filters, in all and by status (one
  request, however many orders).

Every read goes through the store's client, so it shares the store's request budget and its
rate-limit handling with everything else, and is retried on 429 and 5xx. None of them writes:
a test run makes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from connectors.bigcommerce.actions import Target, store_for
from connectors.bigcommerce.errors import NotFound
from engine import ActionContext, ActionSpec, RetryPolicy

READ_RETRY = RetryPolicy(tries=5, backoff=5.0, cap=300.0)
MAX_ITEMS = 250
"""The most items one list step returns (one request to the store)."""


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


class _Resource(BaseModel):
    """A store resource as the API returns it: the fields named here, and every other one."""

    model_config = ConfigDict(extra="allow")


class Product(_Resource):
    id: int
    name: str = ""
    sku: str = ""
    price: float | None = None
    inventory_level: int | None = None
    inventory_tracking: str | None = None
    is_visible: bool | None = None
    categories: list[int] = Field(default_factory=list)


class Variant(_Resource):
    id: int
    product_id: int
    sku: str = ""
    price: float | None = None
    inventory_level: int | None = None
    option_values: list[dict[str, Any]] = Field(default_factory=list)


class Order(_Resource):
    id: int
    customer_id: int | None = None
    status_id: int | None = None
    status: str | None = None
    total_inc_tax: float | None = None
    items_total: int | None = None
    date_created: str | None = None


class OrderLine(_Resource):
    id: int
    product_id: int | None = None
    variant_id: int | None = None
    name: str = ""
    sku: str = ""
    quantity: int = 0
    total_inc_tax: float | None = None


class Customer(_Resource):
    id: int
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    customer_group_id: int | None = None


# -- one by id ---------------------------------------------------------------------------------


class ProductGetParams(Target):
    model_config = _examples({"product_id": "{{ product.id }}", "include": ["variants"]})
    product_id: int = Field(gt=0)
    include: list[Literal["variants", "images", "custom_fields", "primary_image"]] = Field(
        default_factory=list, description="sub-resources to include"
    )


class ProductGetOutput(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"found": True, "product": {"id": 111, "name": "Tent"}}]}
    )
    found: bool
    product: Product | None = None


async def get_product(ctx: ActionContext, params: ProductGetParams) -> ProductGetOutput:
    handle = await store_for(ctx, params)
    include = ",".join(params.include) or None
    try:
        found = await handle.client.get_product(params.product_id, include=include)
    except NotFound:
        return ProductGetOutput(found=False)
    return ProductGetOutput(found=bool(found), product=Product(**found) if found else None)


class VariantGetParams(Target):
    model_config = _examples({"product_id": "{{ variant.product_id }}", "variant_id": 305})
    product_id: int = Field(gt=0)
    variant_id: int = Field(gt=0)


class VariantGetOutput(BaseModel):
    found: bool
    variant: Variant | None = None


async def get_variant(ctx: ActionContext, params: VariantGetParams) -> VariantGetOutput:
    handle = await store_for(ctx, params)
    path = f"/catalog/products/{params.product_id}/variants/{params.variant_id}"
    try:
        body = await handle.client.request("GET", path)
    except NotFound:
        return VariantGetOutput(found=False)
    data = body.get("data") if isinstance(body, dict) else None
    return VariantGetOutput(found=bool(data), variant=Variant(**data) if data else None)


class OrderGetParams(Target):
    model_config = _examples({"order_id": "{{ order.id }}", "lines": True})
    order_id: int = Field(gt=0)
    lines: bool = Field(default=True, description="also read the order's lines (products)")


class OrderGetOutput(BaseModel):
    found: bool
    order: Order | None = None
    lines: list[OrderLine] = Field(default_factory=list)


async def get_order(ctx: ActionContext, params: OrderGetParams) -> OrderGetOutput:
    handle = await store_for(ctx, params)
    try:
        order = await handle.client.get_order(params.order_id)
        lines = await handle.client.get_order_products(params.order_id) if params.lines else []
    except NotFound:
        return OrderGetOutput(found=False)
    if not order:
        return OrderGetOutput(found=False)
    return OrderGetOutput(
        found=True, order=Order(**order), lines=[OrderLine(**line) for line in lines]
    )


class CustomerGetParams(Target):
    model_config = _examples({"customer_id": "{{ order.customer_id }}"})
    customer_id: int = Field(gt=0)


class CustomerGetOutput(BaseModel):
    found: bool
    customer: Customer | None = None


async def get_customer(ctx: ActionContext, params: CustomerGetParams) -> CustomerGetOutput:
    handle = await store_for(ctx, params)
    found = await handle.client.get_customers([params.customer_id])
    if not found:
        return CustomerGetOutput(found=False)
    return CustomerGetOutput(found=True, customer=Customer(**found[0]))


# -- lists -------------------------------------------------------------------------------------


class Page(Target):
    limit: int = Field(default=50, ge=1, le=MAX_ITEMS, description="the most items returned")
    page: int = Field(default=1, ge=1, le=10_000)


class OrderFilters(Target):
    status_id: int | None = Field(default=None, ge=0, le=100)
    customer_id: int | None = Field(default=None, ge=0)
    min_total: float | None = Field(default=None, ge=0)
    max_total: float | None = Field(default=None, ge=0)
    min_date_created: datetime | None = None
    max_date_created: datetime | None = None

    def query(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("status_id", "customer_id", "min_total", "max_total"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        for name in ("min_date_created", "max_date_created"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat()
        return out


class OrdersListParams(OrderFilters, Page):
    model_config = _examples({"customer_id": "{{ order.customer_id }}", "limit": 100})
    sort: Literal["id", "date_created", "date_modified", "status_id"] = Field(
        default="id", description="ascending (the v2 orders API sorts one way)"
    )


class OrdersListOutput(BaseModel):
    orders: list[Order]
    count: int = Field(description="orders on this page")
    total_inc_tax: float = Field(description="the sum of the orders' totals on this page")
    more: bool = Field(description="true when a next page may hold more")
    next_page: int | None = None


async def list_orders(ctx: ActionContext, params: OrdersListParams) -> OrdersListOutput:
    handle = await store_for(ctx, params)
    query = {
        **params.query(),
        "sort": params.sort,
        "limit": params.limit,
        "page": params.page,
    }
    body = await handle.client.request("GET", "/orders", version="v2", params=query)
    rows = body if isinstance(body, list) else []
    orders = [Order(**row) for row in rows[: params.limit]]
    more = len(rows) >= params.limit
    return OrdersListOutput(
        orders=orders,
        count=len(orders),
        total_inc_tax=round(sum(o.total_inc_tax or 0.0 for o in orders), 2),
        more=more,
        next_page=params.page + 1 if more else None,
    )


class OrdersCountParams(OrderFilters):
    model_config = _examples({"status_id": 11})


class OrdersCountOutput(BaseModel):
    count: int
    by_status: dict[str, int] = Field(description="status name → orders")


async def count_orders(ctx: ActionContext, params: OrdersCountParams) -> OrdersCountOutput:
    handle = await store_for(ctx, params)
    body = await handle.client.request("GET", "/orders/count", version="v2", params=params.query())
    body = body if isinstance(body, dict) else {}
    statuses = body.get("statuses") or []
    by_status = {str(s.get("name")): int(s.get("count") or 0) for s in statuses if s.get("count")}
    return OrdersCountOutput(count=int(body.get("count") or 0), by_status=by_status)


class ProductsListParams(Page):
    model_config = _examples({"inventory_low": True, "is_visible": True, "limit": 100})
    ids: list[int] = Field(default_factory=list, max_length=MAX_ITEMS)
    sku: str | None = Field(default=None, max_length=255)
    keyword: str | None = Field(default=None, max_length=255)
    categories: list[int] = Field(default_factory=list, max_length=50)
    is_visible: bool | None = None
    inventory_low: bool | None = Field(default=None, description="at or below the warning level")
    out_of_stock: bool | None = None
    max_inventory_level: int | None = Field(default=None, ge=0)
    sort: Literal["id", "name", "sku", "price", "inventory_level", "total_sold"] = "id"
    direction: Literal["asc", "desc"] = "asc"

    def query(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sort": self.sort, "direction": self.direction}
        if self.ids:
            out["id:in"] = ",".join(map(str, self.ids))
        if self.categories:
            out["categories:in"] = ",".join(map(str, self.categories))
        for name in ("sku", "keyword"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("is_visible", "inventory_low", "out_of_stock"):
            if getattr(self, name) is not None:
                out[name] = "true" if getattr(self, name) else "false"
        if self.max_inventory_level is not None:
            out["inventory_level:max"] = self.max_inventory_level
        return out


class ProductsListOutput(BaseModel):
    products: list[Product]
    count: int = Field(description="products on this page")
    total: int | None = Field(description="products matching the filters, all pages")
    more: bool
    next_page: int | None = None


async def list_products(ctx: ActionContext, params: ProductsListParams) -> ProductsListOutput:
    handle = await store_for(ctx, params)
    query = {**params.query(), "limit": params.limit, "page": params.page}
    body = await handle.client.request("GET", "/catalog/products", params=query)
    body = body if isinstance(body, dict) else {}
    products = [Product(**row) for row in (body.get("data") or [])[: params.limit]]
    pagination = (body.get("meta") or {}).get("pagination") or {}
    pages = pagination.get("total_pages")
    more = params.page < int(pages) if pages is not None else len(products) >= params.limit
    total = pagination.get("total")
    return ProductsListOutput(
        products=products,
        count=len(products),
        total=int(total) if total is not None else None,
        more=more,
        next_page=params.page + 1 if more else None,
    )


def _read(
    name: str, text: str, params: type[BaseModel], output: type[BaseModel], handler: Any
) -> ActionSpec:
    return ActionSpec(
        name=name,
        description=text,
        params=params,
        output=output,
        handler=handler,
        retry=READ_RETRY,
        timeout=120,
    )


DATA_ACTIONS: tuple[ActionSpec, ...] = (
    _read(
        "bigcommerce.product.get",
        "Read a product by id (found: false when there is none)",
        ProductGetParams,
        ProductGetOutput,
        get_product,
    ),
    _read(
        "bigcommerce.variant.get",
        "Read a variant of a product by id",
        VariantGetParams,
        VariantGetOutput,
        get_variant,
    ),
    _read(
        "bigcommerce.order.get",
        "Read an order by id, with its lines",
        OrderGetParams,
        OrderGetOutput,
        get_order,
    ),
    _read(
        "bigcommerce.customer.get",
        "Read a customer by id",
        CustomerGetParams,
        CustomerGetOutput,
        get_customer,
    ),
    _read(
        "bigcommerce.orders.list",
        "List orders by status, customer, total or date: one page of up to 250, with the sum "
        "of their totals",
        OrdersListParams,
        OrdersListOutput,
        list_orders,
    ),
    _read(
        "bigcommerce.orders.count",
        "Count the orders matching filters, in all and by status (one request)",
        OrdersCountParams,
        OrdersCountOutput,
        count_orders,
    ),
    _read(
        "bigcommerce.products.list",
        "List products by ids, SKU, keyword, category, visibility or stock: one page of up to 250",
        ProductsListParams,
        ProductsListOutput,
        list_products,
    ),
)
