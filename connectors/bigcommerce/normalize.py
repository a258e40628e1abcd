"""Normalisation: a raw delivery (``bigcommerce.webhook``, or ``bigcommerce.poll`` from the
catch-up poll) becomes typed events, in the ``bigcommerce.normalize`` job written with it.

Webhooks carry ids, so the resource is fetched, under the store's quota budget: products through
the store's :class:`~connectors.bigcommerce.reader.ProductReader` (one ``id:in`` request for many
deliveries), orders and customers through the store's client (``normalize_orders.py``).

Stock transitions come from a snapshot of the last level seen per product and variant: the
change from the snapshot to the fetched level gives ``inventory_changed`` and, for tracked
stock, ``out_of_stock`` (to zero), ``back_in_stock`` (from zero) and ``low_stock`` (crossing
``inventory_warning_level`` downwards; a drop straight to zero fires both). The inventory
webhook's ``value`` is a *delta*, not a level (webhooks.md §1), so it only supplies the
previous level of a product seen for the first time. A first read without a delta keeps no level
(it may already include a sale whose delivery is still to come); the next delta gives it.
Transitions say whether shoppers can buy from stock: while a product's tracking is off (on
backorder) only ``inventory_changed`` fires, and when tracking comes back on the level is
compared with the one last seen tracked (the ``shelf`` snapshot), so a restock after a backorder
fires ``back_in_stock`` (docs/backorders.md).

Dedup keys derive from the resource and its state (id, ``date_modified``, the levels), never
from the delivery, so a re-run job, two deliveries that saw the same state, and a poll of a
change a webhook already reported all collapse into one event. A change made by one of Sous's
own writes (the write log, within its window) carries ``caused_by`` so loops can be stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from connectors.bigcommerce import normalize_locations as locations, normalize_orders as orders
from connectors.bigcommerce.changes import (
    PRODUCT_FIELDS,
    VARIANT_FIELDS,
    changes as what_changed,
    watched,
)
from connectors.bigcommerce.models import (
    ResourceLocks,
    SnapKey,
    Snapshot,
    SnapshotConflict,
    Snapshots,
    WriteLog,
)
from connectors.bigcommerce.payloads import as_int as _int, dedup_key, digest, product_payload
from connectors.bigcommerce.stores import BigCommerceStores, StoreHandle
from engine import (
    CausedBy,
    Event,
    Job,
    NewEvent,
    NotFoundError,
    PermanentError,
    RetryableError,
    load_event,
    put_back,
    retry_delay,
)

if TYPE_CHECKING:
    from engine import ConnectorHost

log = logging.getLogger("sous.bigcommerce")

NORMALIZE = "bigcommerce.normalize"
SHELF = "shelf"
"""Snapshot kind: a product's level last seen while tracked, kept while tracking is off."""
RAW_TYPES = ("bigcommerce.webhook", "bigcommerce.poll")
STOCK_SCOPES = frozenset(
    f"store/{kind}/inventory/{change}"
    for kind in ("product", "sku")
    for change in ("updated", "order/updated")
)
"""Deliveries that only say a level changed (their events are the stock transitions)."""
_TICK = timedelta(microseconds=1)
CONFLICT_TRIES = 8
"""Derivations of one job whose snapshots another process changed first, before the job is
put back like any other retryable failure."""


@dataclass
class Raw:
    event: Event
    scope: str
    data: dict[str, Any]
    store: StoreHandle


Route = Callable[["Normalizer", Raw, Job], Awaitable[None]]


class Normalizer:
    """The ``bigcommerce.normalize`` job handler."""

    def __init__(
        self,
        engine: ConnectorHost,
        stores: BigCommerceStores,
        snapshots: Snapshots,
        writes: WriteLog,
        *,
        max_attempts: int = 8,
        cache_size: int = 10_000,
    ) -> None:
        self.engine = engine
        self.stores = stores
        self.snapshots = snapshots
        self.writes = writes
        self.max_attempts = max_attempts
        self.cache_size = cache_size
        self.counts: dict[str, int] = {}
        self.locks = ResourceLocks()
        self.follow_ups: Callable[[str], Sequence[str]] = lambda _type: ()
        """Job kinds to write with each normalised event of a type (in the same transaction):
        other connectors that react to store events (the backorder ledger) plug in here."""
        self._started = datetime.min.replace(tzinfo=engine.clock.now().tzinfo)
        self._fetched: OrderedDict[SnapKey, tuple[datetime, datetime, dict[str, Any]]] = (
            OrderedDict()
        )
        """Per product, the latest read: when its request was sent, its order stamp (the same,
        made later than any earlier read of this process, so two reads never tie; as
        :meth:`_fetch` returns it) and what it found."""
        self.order_reads: dict[tuple[str, int], tuple[datetime, asyncio.Future[Any]]] = {}
        self.locations: dict[str, dict[int, dict[str, Any]]] = {}
        """Each store's inventory locations by id (``normalize_locations.py``)."""

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    # -- the job ---------------------------------------------------------------------------------
    async def handle(self, job: Job) -> None:
        event = job.hint if isinstance(job.hint, Event) else None
        if event is None:  # a job from another process, or after a restart
            ref = job.ref
            event = await self.engine.db.read(lambda tx: load_event(tx, ref))
        job.hint = None
        try:
            raw = await self._raw(event) if event is not None else None
            if raw is None:
                await self.commit(job, [], {})
                return
            await self._derive(raw, job)
            self.count("jobs_done")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # 429, 5xx, no answer, a database hiccup: later; 401, 403: never
            await self._failed(job, exc)

    async def _derive(self, raw: Raw, job: Job) -> None:
        """Run the job's route; again, from the database's snapshots, when another process
        changed one it read before this one committed (the conflict is found at the commit)."""
        for attempt in range(CONFLICT_TRIES):
            try:
                with self.snapshots.basis():
                    await ROUTES[raw.scope](self, raw, job)
                return
            except SnapshotConflict as conflict:
                self.count("snapshot_conflicts")
                if attempt == CONFLICT_TRIES - 1:
                    raise
                await self.snapshots.settled(conflict.keys)  # its holder is committing
                self.snapshots.forget(conflict.keys)
                self.count("derived_again")

    async def _failed(self, job: Job, exc: Exception) -> None:
        delay = retry_delay(job, exc, self.max_attempts)
        if delay is None:
            permanent = isinstance(exc, PermanentError)
            log.error(
                "normalising event %s: %s; dropped (attempt %d)", job.ref, exc, job.attempts + 1
            )
            self.count("jobs_failed" if permanent else "jobs_dropped")
            await self.commit(job, [], {})
            return
        if not isinstance(exc, RetryableError):
            log.exception("normalising event %s failed; retrying in %.0fs", job.ref, delay)
        else:
            log.warning("normalising event %s: %s; retrying in %.0fs", job.ref, exc, delay)
        self.count("jobs_retried")
        await put_back(self.engine.db, self.engine.queue, self.engine.clock, job, delay)

    async def _raw(self, event: Event) -> Raw | None:
        envelope = event.payload
        scope = str(envelope.get("scope", ""))
        data = envelope.get("data")
        if event.type not in RAW_TYPES or scope not in ROUTES or not isinstance(data, dict):
            return None
        if event.store is None:
            return None
        try:
            store = await self.stores.get(event.workspace, event.store)
        except NotFoundError:
            log.info(
                "event %s is for store %s, which is no longer connected", event.id, event.store
            )
            return None
        return Raw(event, scope, data, store)

    async def commit(
        self, job: Job, events: list[NewEvent], changes: dict[SnapKey, Snapshot | None]
    ) -> None:
        """Store the events, the snapshots they were derived from and the job's completion in
        one transaction: a crash leaves either all of them or none, so a job run again after a
        crash derives the same events from the same snapshots (deduplicated on their keys)."""

        basis = self.snapshots.read()

        def verify(tx: Any) -> None:  # before the events: two processes never insert the same
            self.snapshots.verify(tx, basis)

        def also(tx: Any) -> None:
            self.snapshots.save(tx, changes)
            self.engine.queue.complete(tx, job)

        try:
            await self.engine.ingest_many(
                events, follow_up=self.follow_ups, also=also, first=verify
            )
        except BaseException:
            self.snapshots.forget(changes)
            raise
        self.snapshots.remember(changes)
        for new in events:
            self.count("events:" + new.type)

    # -- helpers ---------------------------------------------------------------------------------
    def new_event(
        self, raw: Raw, name: str, payload: dict[str, Any], key: str, caused: CausedBy | None = None
    ) -> NewEvent:
        return NewEvent(
            type=f"bigcommerce.{name}",
            payload=payload,
            workspace=raw.event.workspace,
            store=raw.store.store_hash,
            source=raw.event.source,
            dedup_key=dedup_key(f"{raw.store.store_hash}:{key}"),
            occurred_at=raw.event.occurred_at,
            caused_by=caused,
        )

    def attribute(self, raw: Raw, kinds: tuple[str, ...], ref: int) -> CausedBy | None:
        """``caused_by`` when one of Sous's recent writes touched this resource."""
        record = self.writes.find(raw.store.id, kinds, ref)
        if record is None:
            return None
        self.count("attributed")
        compiled = self.engine.compiled(record.recipe_uid)
        name = compiled.recipe.id if compiled is not None else record.recipe_uid
        return CausedBy(record.run_id, record.recipe_uid, record.depth + 1, (*record.chain, name))

    def _stock(
        self, raw: Raw, kind: str, ref: int, now: Snapshot, hint: int | None, base: dict[str, Any]
    ) -> list[NewEvent]:
        snap = self.snapshots.get((raw.store.id, kind, ref))
        after = now.level or 0
        if snap is not None and snap.level is not None:
            before: int | None = snap.level
        else:  # first seen, or only provisionally: the delivery's delta gives the level before
            before = None if hint is None else after - hint
        steps: list[tuple[str, int]] = []
        if before is not None and before != after:
            steps.append(("inventory_changed", before))
        shelf = self._shelf(raw, kind, ref, snap, now, before)
        warning = now.warning_level or 0
        if now.tracked and shelf is not None:
            if shelf > 0 >= after:
                steps.append(("out_of_stock", shelf))
            if shelf <= 0 < after:
                steps.append(("back_in_stock", shelf))
            if warning > 0 and shelf > warning >= after:
                steps.append(("low_stock", shelf))
        if not steps:
            return []
        kinds = ("product_stock",) if kind == "product" else ("variant_stock", "variant")
        caused = self.attribute(raw, kinds, ref)
        return [
            self.new_event(
                raw,
                f"{kind}.{name}",
                {**base, "previous": prev, "current": after, "delta": after - prev,
                 "warning_level": warning},
                f"{kind}:{ref}:{name}:{prev}>{after}:{now.stamp}",
                caused,
            )
            for name, prev in steps
        ]  # fmt: skip

    def _shelf(
        self,
        raw: Raw,
        kind: str,
        ref: int,
        snap: Snapshot | None,
        now: Snapshot,
        before: int | None,
    ) -> int | None:
        """The level transitions start from: the level before, or, when tracking comes back on
        (the end of a backorder), the level last seen while tracked (``shelf`` snapshot)."""
        if kind != "product" or snap is None or snap.tracked or not now.tracked:
            return before
        kept = self.snapshots.get((raw.store.id, SHELF, ref))
        return kept.level if kept is not None else None

    def _has_shelf(self, sid: str, ref: int) -> bool:
        return self.snapshots.get((sid, SHELF, ref)) is not None

    def _baseline(
        self, sid: str, ref: int, now: Snapshot, hint: int | None
    ) -> dict[SnapKey, Snapshot | None]:
        """The snapshot changes a product read makes. A first read without a delta is kept
        without its level: it may already include changes whose deliveries are still to come
        (a sale before Sous first read a new product), whose deltas then give the level before.
        While tracking is off, the level last seen tracked is kept as the ``shelf``."""
        key = (sid, "product", ref)
        snap = self.snapshots.get(key)
        now = _provisional(snap, now, hint)
        changes: dict[SnapKey, Snapshot | None] = {key: now} if snap != now else {}
        if snap is not None and snap.tracked and not now.tracked and snap.level is not None:
            changes[(sid, SHELF, ref)] = Snapshot(snap.level, tracked=True, stamp=snap.stamp)
        elif snap is not None and not snap.tracked and now.tracked and self._has_shelf(sid, ref):
            changes[(sid, SHELF, ref)] = None
        return changes

    def _hints(self, raw: Raw) -> dict[tuple[str, int], int]:
        inventory = raw.data.get("inventory")
        if not isinstance(inventory, dict) or _int(inventory.get("value")) is None:
            return {}
        value = int(inventory["value"])
        variant = _int(inventory.get("variant_id"))
        if raw.scope.startswith("store/sku/") and variant is not None:
            return {("variant", variant): value}
        product = _int(inventory.get("product_id")) or _int(raw.data.get("id"))
        return {("product", product): value} if product is not None else {}

    async def _covered(self, raw: Raw, key: SnapKey) -> bool:
        """Whether a stock delivery needs no read: this process has no read of the product
        sent after the delivery arrived, but the database's snapshot holds one (another
        process's), whose transitions were derived when it was stored. Only stock scopes:
        an update event carries the product read for it."""
        if raw.scope not in STOCK_SCOPES or self.engine.db.is_sqlite:
            return False
        hit = self._fetched.get(key)
        if hit is not None and hit[0] > raw.event.received_at:
            return False  # reused below, without a request
        snap = await self.snapshots.stored(key)
        if snap is None or snap.read_at is None or snap.read_at <= raw.event.received_at:
            return False
        self.snapshots.remember({key: snap})
        self.snapshots.get(key)  # part of the basis: a change before the commit is a conflict
        self.count("reads_covered")
        return True

    async def _fetch(self, raw: Raw, key: SnapKey) -> tuple[datetime, dict[str, Any] | None]:
        """The product as read after this delivery arrived, and when the request that read it
        was sent (not when this delivery asked for it: a batched read may wait for the quota,
        and another process's read asked for later may be sent, and see the store, earlier).

        A read sent after the delivery was received already shows its change, so deliveries
        waiting in a backlog reuse the latest such read instead of reading again: reads follow
        the rate of changes, not the length of the backlog.
        """
        hit = self._fetched.get(key)
        if hit is not None and hit[0] > raw.event.received_at:
            self._fetched.move_to_end(key)
            self.count("reads_reused")
            return hit[1], hit[2]
        sent, found = await raw.store.reader.read(key[2])
        self.count("reads")
        sent = sent or self.engine.clock.now()
        order = self._started = max(sent, self._started + _TICK)
        current = self._fetched.get(key)
        if found is not None and (current is None or current[1] < order):
            self._fetched[key] = (sent, order, found)
            self._fetched.move_to_end(key)
            while len(self._fetched) > self.cache_size:
                self._fetched.popitem(last=False)
        return order, found

    # -- products and variants -------------------------------------------------------------------
    async def product(self, raw: Raw, job: Job) -> None:
        data = raw.data
        nested = data.get("inventory") or data.get("sku") or {}
        nested = nested if isinstance(nested, dict) else {}
        pid = _int(nested.get("product_id"))
        if pid is None and raw.scope.startswith("store/product/"):
            pid = _int(data.get("id"))
        if pid is None:
            await self.commit(job, [], {})
            return
        if raw.scope == "store/product/deleted":
            key = (raw.store.id, "product", pid)
            self._fetched.pop(key, None)
            async with self.locks.hold(key):
                event = self.new_event(
                    raw, "product.deleted", {"product": {"id": pid}}, f"product:{pid}:deleted"
                )
                await self.commit(job, [event], {key: None, (raw.store.id, SHELF, pid): None})
            return
        key = (raw.store.id, "product", pid)
        if await self._covered(raw, key):
            await self.commit(job, [], {})
            return
        started, found = await self._fetch(raw, key)
        async with self.locks.hold(key):
            await self.snapshots.refresh(raw.store.id, pid, ("product", SHELF))
            events: list[NewEvent] = []
            changes: dict[SnapKey, Snapshot | None] = {}
            if found is not None:
                events, changes = self._observe(raw, pid, found, started)
            if raw.scope == "store/sku/deleted":
                variant_id = _int(nested.get("variant_id"))
                gone = {"id": variant_id, "sku_id": _int(data.get("id")), "product_id": pid}
                events.append(
                    self.new_event(
                        raw, "variant.deleted", {"variant": gone}, f"variant:{variant_id}:deleted"
                    )
                )
                if variant_id is not None:
                    changes[(raw.store.id, "variant", variant_id)] = None
            await self.commit(job, events, changes)

    def _observe(
        self, raw: Raw, pid: int, found: dict[str, Any], started: datetime
    ) -> tuple[list[NewEvent], dict[SnapKey, Snapshot | None]]:
        """The events a read of product ``pid`` (started at ``started``) gives for this
        delivery. Stock is compared with the snapshots only for a read that started after the
        one the snapshot holds (``fresh``; the snapshot then keeps this read's start, except
        while its level is provisional: the deliveries this read includes must still compare).
        """
        product = product_payload(found)
        stamp = str(found.get("date_modified") or "")
        tracking = str(product.get("inventory_tracking") or "none")
        hints = self._hints(raw)
        sid = raw.store.id
        now = Snapshot(
            _int(product.get("inventory_level")) or 0,
            _int(product.get("inventory_warning_level")) or 0,
            tracking != "none",
            stamp=stamp,
        )
        events: list[NewEvent] = []
        changes: dict[SnapKey, Snapshot | None] = {}
        snap = self.snapshots.get((sid, "product", pid))
        updated = _nothing()
        fresh = snap is None or snap.read_at is None or started > snap.read_at
        if fresh:
            hint = hints.get(("product", pid))
            events = self._stock(raw, "product", pid, now, hint, {"product": product})
            now = replace(now, fields=watched(product, PRODUCT_FIELDS), read_at=started)
            updated = what_changed(snap.fields if snap else None, now.fields or {})
            changes = self._baseline(sid, pid, now, hint)
        variants = {
            int(v["id"]): v for v in product["variants"] if isinstance(v, dict) and "id" in v
        }
        vupdated: dict[int, dict[str, Any]] = {}
        if fresh:
            events += self._variants(raw, product, variants, hints, changes, vupdated)
        scope = raw.scope
        if scope == "store/product/created":
            events.append(
                self.new_event(
                    raw, "product.created", {"product": product}, f"product:{pid}:created"
                )
            )
        elif scope == "store/product/updated":
            caused = self.attribute(raw, ("product", "product_stock"), pid)
            key = f"product:{pid}:updated:{stamp}:{digest(found)}"
            payload = {"product": product, **updated}
            events.append(self.new_event(raw, "product.updated", payload, key, caused))
        elif scope in ("store/sku/created", "store/sku/updated"):
            sku = raw.data.get("sku")
            vid_ = _int(sku.get("variant_id")) if isinstance(sku, dict) else None
            changed = variants.get(vid_) if vid_ is not None else None
            if changed is not None:
                payload = {"product": product, "variant": changed}
                if scope.endswith("created"):
                    events.append(
                        self.new_event(raw, "variant.created", payload, f"variant:{vid_}:created")
                    )
                else:
                    caused = self.attribute(raw, ("variant", "variant_stock"), vid_ or 0)
                    key = f"variant:{vid_}:updated:{stamp}:{digest(changed)}"
                    payload.update(vupdated.get(vid_ or 0) or _nothing())
                    events.append(self.new_event(raw, "variant.updated", payload, key, caused))
        return events, changes

    def _variants(
        self,
        raw: Raw,
        product: dict[str, Any],
        variants: dict[int, dict[str, Any]],
        hints: dict[tuple[str, int], int],
        changes: dict[SnapKey, Snapshot | None],
        updated: dict[int, dict[str, Any]],
    ) -> list[NewEvent]:
        """The option variants of a fresh read: their stock events (tracked by variant), their
        snapshot ``changes`` and what changed on each (``updated``)."""
        sid, pid = raw.store.id, int(product["id"])
        tracking = str(product.get("inventory_tracking") or "none")
        stamp = str(product.get("date_modified") or "")
        events: list[NewEvent] = []
        for vid, variant in variants.items():
            if not variant.get("option_values"):
                continue
            vsnap = self.snapshots.get((sid, "variant", vid))
            vfields = watched(variant, VARIANT_FIELDS)
            updated[vid] = what_changed(vsnap.fields if vsnap else None, vfields)
            if tracking != "variant":  # only the fields (no stamp: rewritten when they change)
                vnow = Snapshot(parent=pid, fields=vfields)
            else:
                vnow = Snapshot(
                    _int(variant.get("inventory_level")) or 0,
                    _int(variant.get("inventory_warning_level")) or 0,
                    True,
                    stamp=stamp,
                    parent=pid,
                    fields=vfields,
                )
                base = {"product": product, "variant": variant}
                vhint = hints.get(("variant", vid))
                events += self._stock(raw, "variant", vid, vnow, vhint, base)
                vnow = _provisional(vsnap, vnow, vhint)
            if vsnap != vnow:
                changes[(sid, "variant", vid)] = vnow
        return events


def _nothing() -> dict[str, Any]:
    """What an update carries when its previous values are not known (a read older than one
    already seen)."""
    return {"changed": [], "previous": {}}


def _provisional(snap: Snapshot | None, now: Snapshot, hint: int | None) -> Snapshot:
    """``now``, without its level when no level was known before and no delta came with it."""
    if (snap is None or snap.level is None) and hint is None:
        return replace(now, level=None, read_at=None)
    return now


ROUTES: dict[str, Route] = {
    **{
        f"store/product/{s}": Normalizer.product
        for s in ("created", "updated", "deleted", "inventory/updated", "inventory/order/updated")
    },
    **{
        f"store/sku/{s}": Normalizer.product
        for s in ("created", "updated", "deleted", "inventory/updated", "inventory/order/updated")
    },
    **{
        f"store/order/{s}": orders.order
        for s in ("created", "updated", "statusUpdated", "refund/created")
    },
    "store/customer/created": orders.customer,
    "store/customer/updated": orders.customer,
    "store/shipment/created": orders.shipment,
    **dict.fromkeys(locations.STOCK_SCOPES, locations.location_stock),
    **dict.fromkeys(locations.LOCATION_SCOPES, locations.location_changed),
}
