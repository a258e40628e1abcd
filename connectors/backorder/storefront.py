"""What an assignment looks like on the store, and how the store is brought to it.

Sous keeps no shadow copy of the storefront: from the product's state before the first
assignment (``previous``) and the product's live assignments it computes the state the product
should have (:func:`desired_state`), compares it with the product as fetched, and writes only
the differences (:func:`apply`). Assigning twice therefore writes nothing the second time, and
with no live assignment left the desired state *is* the previous state: unassigning restores it.

The fields (see ``docs/backorders.md`` for why these):

* open (``active``) assignment: ``inventory_tracking: none`` (BigCommerce then sells at zero
  stock), ``availability: preorder``, ``preorder_message`` (may hold ``%%DATE%%``),
  ``preorder_release_date`` (the ETA), ``is_preorder_only: false``; marker ``on``. With
  assignments of single variants only, the product's other variants that are out of stock (or
  whose own assignment has closed) get ``purchasing_disabled`` with the sold-out message.
* only ``closed`` assignments: the previous fields (tracking back on, so the store refuses
  orders at zero stock); an untracked product is made ``availability: disabled`` instead,
  since restoring ``none`` would keep it on sale; marker ``off``.
* only ``armed`` assignments: the previous fields; marker ``armed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.backorder import eta
from connectors.backorder.config import BackorderSettings
from connectors.backorder.models import ACTIVE, CLOSED, BackorderAssignmentRow
from connectors.bigcommerce.client import BigCommerceClient

PRODUCT_FIELDS = (
    "inventory_tracking",
    "availability",
    "preorder_message",
    "preorder_release_date",
    "is_preorder_only",
)
VARIANT_FIELDS = ("purchasing_disabled", "purchasing_disabled_message")
INCLUDE = "variants,custom_fields"


def option_variants(product: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in product.get("variants") or [] if v.get("option_values")]


def find_variant(product: dict[str, Any], variant_id: int) -> dict[str, Any] | None:
    return next((v for v in option_variants(product) if int(v["id"]) == variant_id), None)


def marker_of(product: dict[str, Any], name: str | None) -> dict[str, Any] | None:
    if not name:
        return None
    fields = product.get("custom_fields") or []
    return next((f for f in fields if isinstance(f, dict) and f.get("name") == name), None)


def snapshot(product: dict[str, Any], settings: BackorderSettings) -> dict[str, Any]:
    """What Sous may change on ``product``, as it is now (kept before the first assignment)."""
    marker = marker_of(product, settings.marker_field)
    return {
        "product": {name: product.get(name) for name in PRODUCT_FIELDS},
        "marker": {"id": marker["id"], "value": marker["value"]} if marker else None,
        "variants": {
            str(v["id"]): {name: v.get(name) for name in VARIANT_FIELDS}
            for v in option_variants(product)
        },
    }


def tracking(previous: dict[str, Any]) -> str:
    return str(previous["product"].get("inventory_tracking") or "none")


def stock_level(product: dict[str, Any], previous: dict[str, Any], variant_id: int | None) -> int:
    """The stock an assignment watches: its variant's when the product tracks by variant."""
    if variant_id is not None and tracking(previous) == "variant":
        variant = find_variant(product, variant_id)
        return int(variant.get("inventory_level") or 0) if variant else 0
    return int(product.get("inventory_level") or 0)


@dataclass
class Desired:
    product: dict[str, Any]
    variants: dict[int, dict[str, Any]] = field(default_factory=dict)
    marker: str | None = None
    """The marker's value; None restores what the product had."""


def desired_state(
    previous: dict[str, Any],
    live: Sequence[BackorderAssignmentRow],
    product: dict[str, Any],
    settings: BackorderSettings,
) -> Desired:
    fields = dict(previous["product"])
    variants = {int(k): dict(v) for k, v in previous["variants"].items()}
    opened = [a for a in live if a.status == ACTIVE]
    closed = [a for a in live if a.status == CLOSED]
    if opened:
        whole = next((a for a in opened if a.variant_id is None), None)
        primary = whole or max(opened, key=lambda a: (a.updated_at, a.id))
        message = eta.message_for(
            primary.message, primary.eta, settings.default_message, settings.undated_message
        )
        fields.update(
            inventory_tracking="none",
            availability="preorder",
            preorder_message=message,
            preorder_release_date=eta.release_datetime(primary.eta),
            is_preorder_only=False,
        )
        if whole is None:
            _hold_other_variants(variants, opened, closed, product, previous, settings)
        return Desired(fields, variants, "on")
    if closed:
        if tracking(previous) == "none":
            fields["availability"] = "disabled"
        return Desired(fields, variants, "off")
    return Desired(fields, variants, "armed" if live else None)


def _hold_other_variants(
    variants: dict[int, dict[str, Any]],
    opened: Iterable[BackorderAssignmentRow],
    closed: Iterable[BackorderAssignmentRow],
    product: dict[str, Any],
    previous: dict[str, Any],
    settings: BackorderSettings,
) -> None:
    """With tracking off for one variant's sake, keep sold-out siblings unpurchasable."""
    open_ids = {a.variant_id for a in opened}
    closed_ids = {a.variant_id for a in closed}
    by_variant = tracking(previous) == "variant"
    for variant in option_variants(product):
        vid = int(variant["id"])
        if vid in open_ids:
            continue
        sold_out = by_variant and int(variant.get("inventory_level") or 0) <= 0
        if sold_out or vid in closed_ids:
            variants[vid] = {
                "purchasing_disabled": True,
                "purchasing_disabled_message": settings.sold_out_message,
            }


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _same(name: str, current: Any, wanted: Any) -> bool:
    if name == "preorder_release_date":
        return _when(current) == _when(wanted)
    if name in ("preorder_message", "purchasing_disabled_message"):
        return (current or "") == (wanted or "")
    return bool(current == wanted)


@dataclass(frozen=True)
class Deduction:
    """Take ``units`` off a stock level, once: only while the level still reads ``seen``."""

    variant_id: int | None
    seen: int
    units: int

    def to_dict(self) -> dict[str, Any]:
        return {"variant_id": self.variant_id, "seen": self.seen, "units": self.units}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deduction:
        return cls(data.get("variant_id"), int(data["seen"]), int(data["units"]))


@dataclass
class Applied:
    """What was written: product fields, variant fields, the marker ("" when removed)."""

    product: dict[str, Any] = field(default_factory=dict)
    variants: dict[int, dict[str, Any]] = field(default_factory=dict)
    marker: str | None = None
    remove_marker: int | None = None
    requests: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.product or self.variants or self.marker is not None)


def plan(
    product: dict[str, Any],
    desired: Desired,
    previous: dict[str, Any],
    settings: BackorderSettings,
    deductions: Sequence[Deduction] = (),
) -> Applied:
    """The writes that would bring ``product`` (as fetched) to ``desired``; none when equal."""
    todo = Applied()
    body = {k: v for k, v in desired.product.items() if not _same(k, product.get(k), v)}
    for cut in deductions:
        if cut.variant_id is None and int(product.get("inventory_level") or 0) == cut.seen:
            body["inventory_level"] = max(0, cut.seen - cut.units)
    current = marker_of(product, settings.marker_field)
    wanted = desired.marker
    if wanted is None and previous.get("marker"):
        wanted = str(previous["marker"]["value"])
    if wanted is not None and settings.marker_field:
        if current is None:
            body["custom_fields"] = [{"name": settings.marker_field, "value": wanted}]
        elif current.get("value") != wanted:
            body["custom_fields"] = [
                {"id": current["id"], "name": settings.marker_field, "value": wanted}
            ]
        if "custom_fields" in body:
            todo.marker = wanted
    elif current is not None:
        todo.remove_marker = int(current["id"])
        todo.marker = ""
    todo.product = body
    for variant in option_variants(product):
        vid = int(variant["id"])
        wanted_v = desired.variants.get(vid, {})
        changes = {k: v for k, v in wanted_v.items() if not _same(k, variant.get(k), v)}
        for cut in deductions:
            if cut.variant_id == vid and int(variant.get("inventory_level") or 0) == cut.seen:
                changes["inventory_level"] = max(0, cut.seen - cut.units)
        if changes:
            todo.variants[vid] = changes
    return todo


async def apply(
    client: BigCommerceClient,
    product: dict[str, Any],
    desired: Desired,
    previous: dict[str, Any],
    settings: BackorderSettings,
    deductions: Sequence[Deduction] = (),
) -> Applied:
    """Write what differs between ``product`` (as fetched) and ``desired``."""
    done = plan(product, desired, previous, settings, deductions)
    pid = int(product["id"])
    if done.product:
        await client.update_product(pid, done.product)
        done.requests += 1
        done.product = {k: v for k, v in done.product.items() if k != "custom_fields"}
    for vid, changes in done.variants.items():
        await client.update_variant(pid, vid, changes)
        done.requests += 1
    if done.remove_marker is not None:
        path = f"/catalog/products/{pid}/custom-fields/{done.remove_marker}"
        await client.request("DELETE", path)
        done.requests += 1
    return done


async def fetch(client: BigCommerceClient, product_id: int) -> dict[str, Any]:
    return await client.get_product(product_id, include=INCLUDE)
