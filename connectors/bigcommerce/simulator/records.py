"""The simulator's stored objects. Field names and types follow the OpenAPI schemas.

Records are pydantic models so that a write can be validated by merging the stored record with the
request body and re-validating (see :func:`merged`); unknown request fields are ignored.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .formats import invalid

R = TypeVar("R", bound=BaseModel)

Tracking = Literal["none", "product", "variant"]
Availability = Literal["available", "disabled", "preorder"]


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=False)


def validation_errors(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "body"
        out[key] = err["msg"]
    return out


def merged(record: R, changes: dict[str, Any], *, read_only: frozenset[str] = frozenset()) -> R:
    """A copy of ``record`` with ``changes`` applied and validated (422 on bad values)."""
    data = record.model_dump()
    data.update({k: v for k, v in changes.items() if k not in read_only})
    try:
        return type(record).model_validate(data)
    except ValidationError as exc:
        raise invalid(validation_errors(exc)) from exc


def build(model: type[R], data: dict[str, Any]) -> R:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(validation_errors(exc)) from exc


class CustomUrl(Record):
    url: str = Field(min_length=1, max_length=255)
    is_customized: bool = False


class CustomField(Record):
    id: int
    name: str = Field(min_length=1, max_length=250)
    value: str = Field(min_length=1, max_length=250)


class Product(Record):
    """A catalog product. ``inventory_level`` is the product-level stock (see ``inventory.py``)."""

    id: int
    name: str = Field(min_length=1, max_length=250)
    type: Literal["physical", "digital"] = "physical"
    sku: str = Field(default="", max_length=255)
    description: str = ""
    weight: float = Field(default=0, ge=0)
    width: float = Field(default=0, ge=0)
    depth: float = Field(default=0, ge=0)
    height: float = Field(default=0, ge=0)
    price: float = Field(default=0, ge=0)
    cost_price: float = Field(default=0, ge=0)
    retail_price: float = Field(default=0, ge=0)
    sale_price: float = Field(default=0, ge=0)
    map_price: float = 0
    tax_class_id: int = Field(default=0, ge=0, le=255)
    product_tax_code: str = ""
    categories: list[int] = Field(default_factory=list)
    brand_id: int = Field(default=0, ge=0)
    option_set_id: int | None = None
    option_set_display: str = "right"
    inventory_level: int = Field(default=0, ge=0, le=2_147_483_647)
    inventory_warning_level: int = Field(default=0, ge=0, le=2_147_483_647)
    inventory_tracking: Tracking = "none"
    reviews_rating_sum: int = 0
    reviews_count: int = 0
    total_sold: int = 0
    fixed_cost_shipping_price: float = Field(default=0, ge=0)
    is_free_shipping: bool = False
    is_visible: bool = True
    is_featured: bool = False
    related_products: list[int] = Field(default_factory=lambda: [-1])
    warranty: str = ""
    bin_picking_number: str = ""
    layout_file: str = "product.html"
    upc: str = Field(default="", max_length=14)
    mpn: str = ""
    gtin: str = Field(default="", max_length=14)
    search_keywords: str = ""
    availability: Availability = "available"
    availability_description: str = Field(default="", max_length=255)
    gift_wrapping_options_type: Literal["any", "none", "list"] = "any"
    gift_wrapping_options_list: list[int] = Field(default_factory=list)
    sort_order: int = 0
    condition: Literal["New", "Used", "Refurbished"] = "New"
    is_condition_shown: bool = False
    order_quantity_minimum: int = Field(default=0, ge=0)
    order_quantity_maximum: int = Field(default=0, ge=0)
    page_title: str = ""
    meta_keywords: list[str] = Field(default_factory=list)
    meta_description: str = ""
    view_count: int = 0
    preorder_release_date: datetime | None = None
    preorder_message: str = Field(default="", max_length=255)
    is_preorder_only: bool = False
    is_price_hidden: bool = False
    price_hidden_label: str = ""
    custom_url: CustomUrl | None = None
    open_graph_type: str = "product"
    open_graph_title: str = ""
    open_graph_description: str = ""
    open_graph_use_meta_description: bool = True
    open_graph_use_product_name: bool = True
    open_graph_use_image: bool = True
    date_created: datetime
    date_modified: datetime
    custom_fields: list[CustomField] = Field(default_factory=list)


#: Product fields a client may not write.
PRODUCT_READ_ONLY = frozenset(
    {"id", "date_created", "date_modified", "calculated_price", "base_variant_id", "custom_fields"}
)
#: Product fields whose change fires ``store/product/updated`` (webhooks.md, "trigger fields").
PRODUCT_TRIGGER_FIELDS = frozenset(Product.model_fields) - {
    "id",
    "date_created",
    "date_modified",
    "custom_fields",
    "view_count",
    "inventory_level",
    "inventory_warning_level",
    "open_graph_use_meta_description",
    "open_graph_use_product_name",
    "open_graph_use_image",
    "gift_wrapping_options_type",
    "gift_wrapping_options_list",
    "mpn",
    "gtin",
    "map_price",
    "option_set_id",
    "option_set_display",
}


class OptionValue(Record):
    id: int
    label: str
    option_id: int
    option_display_name: str


class Variant(Record):
    """A variant (SKU). A product without options has one *base* variant (``option_values == []``).

    Price-like fields left ``None`` inherit the product's value; responses show the resolved number.
    """

    id: int
    product_id: int
    sku: str = Field(default="", max_length=255)
    sku_id: int
    price: float | None = Field(default=None, ge=0)
    cost_price: float | None = Field(default=None, ge=0)
    sale_price: float | None = Field(default=None, ge=0)
    retail_price: float | None = Field(default=None, ge=0)
    weight: float | None = Field(default=None, ge=0)
    width: float | None = Field(default=None, ge=0)
    height: float | None = Field(default=None, ge=0)
    depth: float | None = Field(default=None, ge=0)
    is_free_shipping: bool = False
    fixed_cost_shipping_price: float | None = Field(default=None, ge=0)
    purchasing_disabled: bool = False
    purchasing_disabled_message: str = Field(default="", max_length=255)
    upc: str = Field(default="", max_length=14)
    image_url: str = ""
    inventory_level: int = Field(default=0, ge=0, le=2_147_483_647)
    inventory_warning_level: int = Field(default=0, ge=0, le=2_147_483_647)
    bin_picking_number: str = ""
    mpn: str = ""
    gtin: str = Field(default="", max_length=14)
    option_values: list[OptionValue] = Field(default_factory=list)


VARIANT_READ_ONLY = frozenset({"id", "product_id", "sku_id", "calculated_price", "option_values"})


class Category(Record):
    id: int
    parent_id: int = 0
    name: str = Field(min_length=1, max_length=50)
    description: str = ""
    views: int = 0
    sort_order: int = 0
    page_title: str = ""
    search_keywords: str = ""
    meta_keywords: list[str] = Field(default_factory=list)
    meta_description: str = ""
    layout_file: str = "category.html"
    is_visible: bool = True
    default_product_sort: str = "use_store_settings"
    image_url: str = ""
    custom_url: CustomUrl | None = None


class Customer(Record):
    id: int
    email: str = Field(min_length=3, max_length=255)
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    company: str = Field(default="", max_length=255)
    phone: str = Field(default="", max_length=50)
    notes: str = ""
    tax_exempt_category: str = ""
    customer_group_id: int = 0
    registration_ip_address: str = ""
    accepts_product_review_abandoned_cart_emails: bool = False
    origin_channel_id: int = 1
    channel_ids: list[int] | None = None
    date_created: datetime
    date_modified: datetime


CUSTOMER_READ_ONLY = frozenset({"id", "date_created", "date_modified"})


class CustomerGroup(Record):
    id: int
    name: str = Field(min_length=1)
    is_default: bool = False
    is_group_for_guests: bool = False
    category_access: dict[str, Any] = Field(default_factory=lambda: {"type": "all"})
    date_created: datetime
    date_modified: datetime


class OrderLine(Record):
    id: int
    order_id: int
    product_id: int
    variant_id: int
    name: str
    sku: str
    type: Literal["physical", "digital"] = "physical"
    price_ex_tax: Decimal
    quantity: int
    weight: float = 0
    quantity_shipped: int = 0
    quantity_refunded: int = 0
    cost_price: Decimal = Decimal(0)
    order_address_id: int = 0


class Order(Record):
    id: int
    customer_id: int = 0
    status_id: int = 1
    date_created: datetime
    date_modified: datetime
    date_shipped: datetime | None = None
    billing_address: dict[str, Any]
    shipping_address: dict[str, Any] | None = None
    order_address_id: int = 0
    lines: list[OrderLine] = Field(default_factory=list)
    staff_notes: str = ""
    customer_message: str = ""
    payment_method: str = "Manual"
    payment_status: str = ""
    refunded_amount: Decimal = Decimal(0)
    shipping_cost: Decimal = Decimal(0)
    is_deleted: bool = False
    channel_id: int = 1
    order_source: str = "external"
    external_source: str | None = None
    cart_id: str = ""
    customer_locale: str = "en"
    ip_address: str = ""
    #: Stock taken by this order (restored when it is cancelled or refunded).
    stock_held: bool = False


class Shipment(Record):
    id: int
    order_id: int
    customer_id: int
    order_address_id: int
    date_created: datetime
    tracking_number: str = ""
    tracking_link: str = ""
    merchant_shipping_cost: Decimal = Decimal(0)
    shipping_method: str = ""
    shipping_provider: str = ""
    tracking_carrier: str = ""
    comments: str = ""
    items: list[dict[str, int]] = Field(default_factory=list)


class OrderMessage(Record):
    id: int
    order_id: int
    customer_id: int = 0
    staff_id: int = 0
    type: Literal["customer", "admin"] = "customer"
    subject: str = ""
    message: str = ""
    status: Literal["read", "unread"] = "unread"
    is_flagged: bool = False
    date_created: datetime


class Hook(Record):
    id: int
    client_id: str
    store_hash: str
    scope: str = Field(min_length=1)
    destination: str = Field(min_length=1)
    is_active: bool = True
    headers: dict[str, str] | None = None
    created_at: int
    updated_at: int
    #: ``active``, ``inactive`` or ``deactivated`` (after the retries ran out), as ``/hooks/admin``.
    status: Literal["active", "inactive", "deactivated"] = "active"

    def public(self) -> dict[str, Any]:
        return self.model_dump(exclude={"status"})
