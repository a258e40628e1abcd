"""Multi-location inventory (docs/integrations/webhooks/events/inventory-location.mdx): the
``store/channel/*/inventory/product/…`` and ``store/inventory/location/…`` deliveries become
events that carry the location.

A stock delivery names ``{product_id, variant_id, location_id}``; the level there is read
(``GET /v3/inventory/items``, ``available_to_sell``) and compared with the snapshot of that
variant at that location (kind ``loc:{location id}``), which gives, as for whole products:
``location.inventory_changed`` and, crossing the thresholds, ``location.out_of_stock`` (to
zero), ``location.back_in_stock`` (from zero) and ``location.low_stock`` (falling to or below
the location's warning level). A first delivery for a variant at a location only takes the
baseline, except when BigCommerce itself says the level reached zero or the warning level
(``out_of_stock_reached``, ``low_stock_reached``): that transition fires, without a previous
level. Each payload has the ``location`` (id, code, label, enabled), the ``product`` (as read)
and the ``variant`` (id, sku).

Per-location transitions are what a merchant with several locations expects ("the downtown
shop is out of the red mug"); with a single location they would repeat the product's own
``out_of_stock`` and ``back_in_stock``, so for a store with one location these deliveries are
acknowledged and nothing is read. The store's locations are read once and kept until a
location delivery says they changed.

``store/inventory/location/created`` and ``…/updated`` become ``location.created`` and
``location.updated`` with the location as read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.bigcommerce.models import SnapKey, Snapshot
from connectors.bigcommerce.payloads import as_int as _int, digest, product_payload
from engine import Job, NewEvent

if TYPE_CHECKING:
    from connectors.bigcommerce.normalize import Normalizer, Raw
    from connectors.bigcommerce.stores import StoreHandle

INVENTORY = "store/channel/*/inventory/product/{}"
STOCK_SCOPES = tuple(
    INVENTORY.format(name)
    for name in ("stock_changed", "low_stock_reached", "out_of_stock_reached", "settings_changed")
)
LOCATION_SCOPES = ("store/inventory/location/created", "store/inventory/location/updated")


def _public(location: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "code", "label", "enabled", "type_id", "storefront_visibility")
    return {k: location[k] for k in keep if k in location}


async def store_locations(normalizer: Normalizer, store: StoreHandle) -> dict[int, dict[str, Any]]:
    """The store's locations by id (read once, until a location delivery arrives)."""
    known = normalizer.locations.get(store.id)
    if known is None:
        rows = [row async for row in store.client.paginate_v3("/inventory/locations")]
        known = {int(row["id"]): _public(row) for row in rows if _int(row.get("id")) is not None}
        normalizer.locations[store.id] = known
    return known


async def _level(raw: Raw, variant_id: int, location_id: int) -> dict[str, Any] | None:
    """The variant's item at the location: ``identity`` and the location's row."""
    query = {"variant_id:in": variant_id, "location_id:in": location_id}
    body = await raw.store.client.request("GET", "/inventory/items", params=query)
    for item in (body or {}).get("data") or []:
        for row in item.get("locations") or []:
            if _int(row.get("location_id")) == location_id:
                return {"identity": item.get("identity") or {}, "location": row}
    return None


def _steps(
    scope: str, before: int | None, after: int, warning: int
) -> list[tuple[str, int | None]]:
    """The events a change from ``before`` to ``after`` gives, with their previous level."""
    if before is None:
        if scope.endswith("out_of_stock_reached") and after <= 0:
            return [("out_of_stock", None)]
        if scope.endswith("low_stock_reached") and 0 < after <= warning:
            return [("low_stock", None)]
        return []
    steps: list[tuple[str, int | None]] = []
    if before != after:
        steps.append(("inventory_changed", before))
    if before > 0 >= after:
        steps.append(("out_of_stock", before))
    if before <= 0 < after:
        steps.append(("back_in_stock", before))
    if warning > 0 and before > warning >= after:
        steps.append(("low_stock", before))
    return steps


async def location_stock(self: Normalizer, raw: Raw, job: Job) -> None:
    """A stock delivery at one location (see the module's docstring)."""
    data = raw.data
    pid, vid, lid = (_int(data.get(n)) for n in ("product_id", "variant_id", "location_id"))
    locations = await store_locations(self, raw.store)
    if pid is None or vid is None or lid is None or len(locations) <= 1:
        await self.commit(job, [], {})
        return
    found = await _level(raw, vid, lid)
    if found is None:
        await self.commit(job, [], {})
        return
    row, identity = found["location"], found["identity"]
    after = _int(row.get("available_to_sell")) or 0
    warning = _int((row.get("settings") or {}).get("warning_level")) or 0
    product = await raw.store.reader.get(pid)
    key: SnapKey = (raw.store.id, f"loc:{lid}", vid)
    async with self.locks.hold(key):
        snap = self.snapshots.get(key)
        before = snap.level if snap is not None else None
        now = Snapshot(
            after, warning, True, stamp=str(raw.event.payload.get("created_at")), parent=pid
        )
        location = locations.get(lid) or {"id": lid}
        base = {
            "location": location,
            "product": product_payload(product) if product else {"id": pid},
            "variant": {"id": vid, "sku": str(identity.get("sku") or "")},
            "current": after,
            "warning_level": warning,
        }
        caused = self.attribute(raw, ("product_stock", "variant_stock"), pid)
        events: list[NewEvent] = []
        for name, previous in _steps(raw.scope, before, after, warning):
            payload = {
                **base,
                "previous": previous,
                "delta": None if previous is None else after - previous,
            }
            ref = f"location:{lid}:{vid}:{name}:{previous}>{after}:{now.stamp}"
            events.append(self.new_event(raw, f"location.{name}", payload, ref, caused))
        changes: dict[SnapKey, Snapshot | None] = {key: now} if snap != now else {}
        await self.commit(job, events, changes)


async def location_changed(self: Normalizer, raw: Raw, job: Job) -> None:
    """A location was created or updated: read it again (and forget the store's list)."""
    lid = _int(raw.data.get("location_id"))
    self.locations.pop(raw.store.id, None)
    if lid is None:
        await self.commit(job, [], {})
        return
    rows = [
        row
        async for row in raw.store.client.paginate_v3(
            "/inventory/locations", {"location_id:in": lid}
        )
    ]
    found = next((row for row in rows if _int(row.get("id")) == lid), None)
    if found is None:
        await self.commit(job, [], {})
        return
    change = raw.scope.rsplit("/", 1)[1]
    location = _public(found)
    stamp = str(found.get("updated_at") or "")
    ref = f"location:{lid}:{change}:{stamp}:{digest(location)}"
    event = self.new_event(raw, f"location.{change}", {"location": location}, ref)
    await self.commit(job, [event], {})
