"""The BigCommerce events recipes start from: their payload models (whose JSON Schema is the
catalog's field picker), samples for dry-runs (``payloads.py``) and trigger filters.

Payloads carry the resource as fetched after the change, so recipes write ``{{ product.name }}``
and conditions ``{"var": "product.inventory_level"}``.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connectors.bigcommerce.payloads import (
    SAMPLE_CUSTOMER,
    SAMPLE_LOCATION,
    SAMPLE_ORDER,
    SAMPLE_PRODUCT,
    SAMPLE_SHIPMENT,
    SAMPLE_VARIANT,
    SAMPLE_VARIANT_PRODUCT,
    SAMPLE_WEBHOOK,
    sample_location_stock,
    sample_stock,
    sample_variant_stock,
)
from engine import Event, Params, TriggerSpec


class _Open(BaseModel):
    """Known fields are typed; anything else BigCommerce sends is kept."""

    model_config = ConfigDict(extra="allow")


class Variant(_Open):
    id: int
    product_id: int
    sku: str = ""
    inventory_level: int = 0
    inventory_warning_level: int = 0
    purchasing_disabled: bool = False
    purchasing_disabled_message: str = ""
    option_values: list[dict[str, Any]] = Field(default_factory=list)


class Product(_Open):
    id: int
    name: str = ""
    sku: str = ""
    type: str = "physical"
    price: float = 0
    inventory_level: int = 0
    inventory_warning_level: int = 0
    inventory_tracking: str = Field(default="none", description="none | product | variant")
    availability: str = Field(default="available", description="available | disabled | preorder")
    availability_description: str = ""
    is_visible: bool = True
    is_preorder_only: bool = False
    preorder_message: str = ""
    preorder_release_date: str | None = None
    categories: list[int] = Field(default_factory=list)
    custom_fields: dict[str, str] = Field(default_factory=dict, description="name → value")
    variants: list[Variant] = Field(default_factory=list)
    date_modified: str | None = None


class ProductPayload(BaseModel):
    product: Product


class Changes(BaseModel):
    """What an update changed (``changes.py``)."""

    changed: list[str] = Field(
        default_factory=list, description="watched fields whose value changed"
    )
    previous: dict[str, Any] = Field(
        default_factory=dict, description="their values before the change (field → value)"
    )


class ProductUpdatedPayload(ProductPayload, Changes):
    pass


class DeletedProduct(BaseModel):
    id: int


class ProductDeletedPayload(BaseModel):
    product: DeletedProduct


class StockPayload(BaseModel):
    product: Product
    previous: int = Field(description="stock level before the change")
    current: int = Field(description="stock level after the change")
    delta: int
    warning_level: int = 0


class VariantPayload(BaseModel):
    product: Product
    variant: Variant


class VariantUpdatedPayload(VariantPayload, Changes):
    pass


class VariantDeletedPayload(BaseModel):
    variant: dict[str, Any] = Field(description="id, sku_id and product_id of the deleted variant")


class VariantStockPayload(StockPayload):
    variant: Variant


class OrderLine(_Open):
    id: int
    product_id: int
    variant_id: int = 0
    name: str = ""
    sku: str = ""
    quantity: int = 0
    price_inc_tax: float = 0
    total_inc_tax: float = 0


class Order(_Open):
    id: int
    status_id: int
    status: str = ""
    channel_id: int = Field(default=1, description="the channel (storefront) it was placed on")
    customer_id: int = 0
    date_created: str | None = None
    date_modified: str | None = None
    total_inc_tax: float = 0
    items_total: int = 0
    payment_status: str = ""
    staff_notes: str = ""
    customer_message: str = ""
    billing_address: dict[str, Any] = Field(default_factory=dict)
    products: list[OrderLine] = Field(default_factory=list)


class OrderPayload(BaseModel):
    order: Order


class OrderUpdatedPayload(OrderPayload, Changes):
    pass


class OrderStatusPayload(BaseModel):
    order: Order
    previous_status_id: int
    previous_status: str
    status_id: int
    status: str


class OrderRefundPayload(BaseModel):
    order: Order
    refund_id: int | None = None


class Customer(_Open):
    id: int
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    customer_group_id: int = 0


class CustomerPayload(BaseModel):
    customer: Customer


class CustomerUpdatedPayload(CustomerPayload, Changes):
    pass


class Shipment(_Open):
    id: int
    order_id: int
    tracking_number: str = ""
    shipping_provider: str = ""
    items: list[dict[str, Any]] = Field(default_factory=list)


class ShipmentPayload(BaseModel):
    shipment: Shipment
    order_id: int


class Location(_Open):
    id: int
    code: str = ""
    label: str = ""
    enabled: bool = True


class LocationPayload(BaseModel):
    location: Location


class LocationStockPayload(BaseModel):
    location: Location
    product: Product
    variant: dict[str, Any] = Field(description="id and sku of the variant whose stock changed")
    previous: int | None = Field(
        description="stock level at the location before (null: not known before this event)"
    )
    current: int = Field(description="stock level (available to sell) at the location")
    delta: int | None = None
    warning_level: int = Field(default=0, description="the location's low-stock level")


class WebhookPayload(BaseModel):
    """A delivery exactly as BigCommerce posted it."""

    scope: str
    store_id: str
    data: dict[str, Any] | list[Any]
    hash: str
    created_at: int
    producer: str


# -- trigger filters ----------------------------------------------------------------------------


class ProductFilter(Params):
    product_ids: list[int] = Field(default_factory=list, description="only these products")
    skus: list[str] = Field(default_factory=list, description="only these SKUs")


def _product_filter(params: Any, event: Event) -> str | None:
    assert isinstance(params, ProductFilter)
    product = event.payload.get("product") or {}
    variant = event.payload.get("variant") or {}
    if params.product_ids and product.get("id") not in params.product_ids:
        return f"product {product.get('id')} is not one of {params.product_ids}"
    skus = {str(s) for s in (product.get("sku"), variant.get("sku")) if s}
    if params.skus and not skus & set(params.skus):
        return f"SKU {sorted(skus)} is not one of {params.skus}"
    return None


class FieldsFilter(Params):
    fields: list[str] = Field(
        default_factory=list, description="only when one of these fields changed (e.g. price)"
    )


def _fields_filter(params: Any, event: Event) -> str | None:
    wanted = getattr(params, "fields", None) or []
    changed = event.payload.get("changed") or []
    if wanted and not set(wanted) & set(changed):
        return f"none of {wanted} changed (changed: {changed})"
    return None


class ProductUpdateFilter(ProductFilter, FieldsFilter):
    pass


def _product_update_filter(params: Any, event: Event) -> str | None:
    return _fields_filter(params, event) or _product_filter(params, event)


class LocationFilter(ProductFilter):
    location_ids: list[int] = Field(default_factory=list, description="only these locations")
    location_codes: list[str] = Field(
        default_factory=list, description="only locations with these codes"
    )


def _location_filter(params: Any, event: Event) -> str | None:
    assert isinstance(params, LocationFilter)
    location = event.payload.get("location") or {}
    if params.location_ids and location.get("id") not in params.location_ids:
        return f"location {location.get('id')} is not one of {params.location_ids}"
    if params.location_codes and location.get("code") not in params.location_codes:
        return f"location {location.get('code')!r} is not one of {params.location_codes}"
    return _product_filter(params, event)


class ChannelFilter(Params):
    channel_ids: list[int] = Field(
        default_factory=list, description="only orders placed on these channels"
    )


def _channel_filter(params: Any, event: Event) -> str | None:
    assert isinstance(params, ChannelFilter)
    channel = (event.payload.get("order") or {}).get("channel_id", 1)
    if params.channel_ids and channel not in params.channel_ids:
        return f"channel {channel} is not one of {params.channel_ids}"
    return None


class OrderUpdateFilter(ChannelFilter, FieldsFilter):
    pass


def _order_update_filter(params: Any, event: Event) -> str | None:
    return _fields_filter(params, event) or _channel_filter(params, event)


class StatusFilter(ChannelFilter):
    to: list[int | str] = Field(default_factory=list, description="new status: ids or names")
    from_: list[int | str] = Field(default_factory=list, alias="from", description="old status")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _matches(wanted: list[int | str], status_id: Any, name: Any) -> bool:
    names = {str(w).lower() for w in wanted if isinstance(w, str)}
    return status_id in wanted or str(name).lower() in names


def _status_filter(params: Any, event: Event) -> str | None:
    assert isinstance(params, StatusFilter)
    data = event.payload
    if params.to and not _matches(params.to, data.get("status_id"), data.get("status")):
        return f"new status {data.get('status')!r} is not one of {params.to}"
    if params.from_ and not _matches(
        params.from_, data.get("previous_status_id"), data.get("previous_status")
    ):
        return f"old status {data.get('previous_status')!r} is not one of {params.from_}"
    return _channel_filter(params, event)


class ScopeFilter(Params):
    scopes: list[str] = Field(
        default_factory=list, description="scope patterns, e.g. store/cart/* (all when empty)"
    )


def _scope_filter(params: Any, event: Event) -> str | None:
    assert isinstance(params, ScopeFilter)
    scope = str(event.payload.get("scope", ""))
    if params.scopes and not any(fnmatch.fnmatchcase(scope, p) for p in params.scopes):
        return f"scope {scope!r} matches none of {params.scopes}"
    return None


def _product_trigger(
    name: str, text: str, payload: type[BaseModel], sample: dict[str, Any]
) -> TriggerSpec:
    return TriggerSpec(
        type=f"bigcommerce.{name}",
        description=text,
        payload=payload,
        sample=sample,
        params=ProductFilter,
        filter=_product_filter,
    )


_P = {"product": SAMPLE_PRODUCT}
_V = {"product": SAMPLE_VARIANT_PRODUCT, "variant": SAMPLE_VARIANT}
_O = {"order": SAMPLE_ORDER}

TRIGGERS: tuple[TriggerSpec, ...] = (
    _product_trigger("product.created", "A product was created.", ProductPayload, _P),
    TriggerSpec(
        type="bigcommerce.product.updated",
        description="A product's fields changed (changed: their names; previous: their values "
        "before).",
        payload=ProductUpdatedPayload,
        sample={**_P, "changed": ["price"], "previous": {"price": 99}},
        params=ProductUpdateFilter,
        filter=_product_update_filter,
    ),
    _product_trigger(
        "product.deleted", "A product was deleted.", ProductDeletedPayload, {"product": {"id": 111}}
    ),
    _product_trigger(
        "product.inventory_changed",
        "A product's stock level changed (previous and current levels).",
        StockPayload,
        sample_stock(3, 0, SAMPLE_PRODUCT),
    ),
    _product_trigger(
        "product.out_of_stock",
        "A tracked product's stock reached zero (fires on the change only).",
        StockPayload,
        sample_stock(1, 0, SAMPLE_PRODUCT),
    ),
    _product_trigger(
        "product.back_in_stock",
        "A tracked product's stock went above zero again.",
        StockPayload,
        sample_stock(0, 12, {**SAMPLE_PRODUCT, "inventory_level": 12}),
    ),
    _product_trigger(
        "product.low_stock",
        "A tracked product's stock fell to or below its inventory_warning_level.",
        StockPayload,
        sample_stock(6, 4, {**SAMPLE_PRODUCT, "inventory_level": 4}),
    ),
    _product_trigger("variant.created", "A variant (SKU) was created.", VariantPayload, _V),
    TriggerSpec(
        type="bigcommerce.variant.updated",
        description="A variant's fields changed (changed, previous).",
        payload=VariantUpdatedPayload,
        sample={**_V, "changed": ["price"], "previous": {"price": 129}},
        params=ProductUpdateFilter,
        filter=_product_update_filter,
    ),
    _product_trigger(
        "variant.deleted",
        "A variant was deleted.",
        VariantDeletedPayload,
        {"variant": {"id": 305, "sku_id": 505, "product_id": 112}},
    ),
    _product_trigger(
        "variant.inventory_changed",
        "A variant's stock level changed.",
        VariantStockPayload,
        sample_variant_stock(1, 0),
    ),
    _product_trigger(
        "variant.out_of_stock",
        "A tracked variant's stock reached zero.",
        VariantStockPayload,
        sample_variant_stock(1, 0),
    ),
    _product_trigger(
        "variant.back_in_stock",
        "A tracked variant's stock went above zero.",
        VariantStockPayload,
        sample_variant_stock(0, 6),
    ),
    _product_trigger(
        "variant.low_stock",
        "A tracked variant's stock fell to its warning level.",
        VariantStockPayload,
        sample_variant_stock(3, 2),
    ),
    TriggerSpec(
        type="bigcommerce.order.created",
        description="An order was placed.",
        payload=OrderPayload,
        sample=_O,
        params=ChannelFilter,
        filter=_channel_filter,
    ),
    TriggerSpec(
        type="bigcommerce.order.updated",
        description="An order changed (changed, previous).",
        payload=OrderUpdatedPayload,
        sample={**_O, "changed": ["staff_notes"], "previous": {"staff_notes": ""}},
        params=OrderUpdateFilter,
        filter=_order_update_filter,
    ),
    TriggerSpec(
        type="bigcommerce.order.status_changed",
        description="An order's status changed (ids and names of both statuses).",
        payload=OrderStatusPayload,
        params=StatusFilter,
        filter=_status_filter,
        sample={
            **_O,
            "previous_status_id": 0,
            "previous_status": "Incomplete",
            "status_id": 11,
            "status": "Awaiting Fulfillment",
        },
    ),
    TriggerSpec(
        type="bigcommerce.order.refunded",
        description="A refund was made on an order.",
        payload=OrderRefundPayload,
        sample={**_O, "refund_id": 1},
        params=ChannelFilter,
        filter=_channel_filter,
    ),
    TriggerSpec(
        type="bigcommerce.customer.created",
        description="A customer signed up.",
        payload=CustomerPayload,
        sample={"customer": SAMPLE_CUSTOMER},
    ),
    TriggerSpec(
        type="bigcommerce.customer.updated",
        description="A customer's details changed (changed, previous).",
        payload=CustomerUpdatedPayload,
        sample={
            "customer": SAMPLE_CUSTOMER,
            "changed": ["customer_group_id"],
            "previous": {"customer_group_id": 0},
        },
        params=FieldsFilter,
        filter=_fields_filter,
    ),
    TriggerSpec(
        type="bigcommerce.shipment.created",
        description="Items of an order shipped.",
        payload=ShipmentPayload,
        sample={"shipment": SAMPLE_SHIPMENT, "order_id": 107},
    ),
    *(
        TriggerSpec(
            type=f"bigcommerce.location.{name}",
            description=text,
            payload=LocationStockPayload,
            sample=sample_location_stock(*levels),
            params=LocationFilter,
            filter=_location_filter,
        )
        for name, text, levels in (
            ("inventory_changed", "Stock changed at one location (multi-location stores).", (5, 3)),
            ("out_of_stock", "Stock at one location reached zero.", (1, 0)),
            ("back_in_stock", "Stock at one location went above zero again.", (0, 4)),
            ("low_stock", "Stock at one location fell to its warning level.", (4, 2)),
        )
    ),
    TriggerSpec(
        type="bigcommerce.location.created",
        description="An inventory location was created.",
        payload=LocationPayload,
        sample={"location": SAMPLE_LOCATION},
    ),
    TriggerSpec(
        type="bigcommerce.location.updated",
        description="An inventory location changed (enabled or disabled too).",
        payload=LocationPayload,
        sample={"location": SAMPLE_LOCATION},
    ),
    TriggerSpec(
        type="bigcommerce.webhook",
        description="Any webhook delivery as received (carts, categories, ...): "
        "filter it with `scopes`.",
        payload=WebhookPayload,
        sample=SAMPLE_WEBHOOK,
        params=ScopeFilter,
        filter=_scope_filter,
    ),
)
