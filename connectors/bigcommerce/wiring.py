"""Putting the connector together in a running process, and keeping stores in sync.

:func:`setup` (called by the composition root with the container and its exit stack) registers
the services actions need, the ``bigcommerce.normalize`` job handler, the webhook router, and
the hooks the API calls, and starts the periodic reconciliation.

Reconciliation (:meth:`BigCommerceRuntime.reconcile_all`, every ``reconcile_interval`` seconds
on the engine's clock, or whenever a scheduler calls it) re-creates or re-activates the hooks
BigCommerce deactivated, then catches up on what webhooks missed: products modified since the
last poll (``GET /v3/catalog/products?date_modified:min=``) and orders
(``GET /v2/orders?min_date_modified=``) whose ``date_modified`` differs from the snapshot become
``bigcommerce.poll`` events, normalised by the same job as webhooks (state-derived dedup keys
keep a change reported by both from firing twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import insert, select, update

from connectors.bigcommerce import refresh
from connectors.bigcommerce.changes import PRODUCT_FIELDS, VARIANT_FIELDS, watched
from connectors.bigcommerce.models import (
    SYNC,
    SnapKey,
    Snapshot,
    SnapshotConflict,
    Snapshots,
    WriteLog,
)
from connectors.bigcommerce.normalize import CONFLICT_TRIES, NORMALIZE, Normalizer
from connectors.bigcommerce.payloads import dedup_key
from connectors.bigcommerce.ratelimit_pg import PostgresQuotaBudget
from connectors.bigcommerce.stores import (
    SCOPES,
    BigCommerceConfig,
    BigCommerceStores,
    StoreHandle,
)
from connectors.bigcommerce.webhooks import WebhookStats, build_router
from engine import Cipher, NewEvent, Refetchers, StoreRow, periodically

if TYPE_CHECKING:
    from engine import ConnectorHost

log = logging.getLogger("sous.bigcommerce")
BASELINE_CHUNK = 500
"""Snapshots one baseline transaction stores (and locks)."""
STORES = StoreRow.__table__  # type: ignore[attr-defined]


def _stamp(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class BigCommerceRuntime:
    """The connector's live parts: stores, normalisation, webhook counts, reconciliation."""

    def __init__(
        self, engine: ConnectorHost, stores: BigCommerceStores, *, config: BigCommerceConfig
    ) -> None:
        self.engine = engine
        self.stores = stores
        self.config = config
        self.snapshots = Snapshots(engine.db, engine.clock)
        self.writes = WriteLog(engine.db, engine.clock, config.attribution_window)
        self.normalizer = Normalizer(engine, stores, self.snapshots, self.writes)
        self.webhooks = WebhookStats()
        self.reconciled: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    def install(self) -> None:
        """Register the services and the normalisation job with the engine."""
        self.engine.services.add(self.stores)
        self.engine.services.add(self.writes)
        self.engine.services.add(self)
        self.engine.handle(NORMALIZE, self.normalizer.handle, self.config.normalize_concurrency)
        refresh.install(self.engine.services.get(Refetchers), self.stores)
        self.writes.load()

    def router(self, max_body: int = 1_000_000) -> Any:
        # Engine.ingest, not Engine.receive: BigCommerce wants an answer at once and retries (and
        # in the end blocklists) slow destinations; it does not slow down for a held answer.
        return build_router(self.stores, self.engine.ingest, self.webhooks, max_body=max_body)

    # -- registration ----------------------------------------------------------------------------
    async def register(self, **store: Any) -> dict[str, Any]:
        """Register the hooks of a newly connected store (see
        :meth:`BigCommerceStores.register`), then take the stock baseline."""
        report = await self.stores.register(**store)
        handle = await self.stores.by_id(str(store["store_id"]))
        report["baseline"] = await self.baseline(handle)
        return report

    async def baseline(self, handle: StoreHandle) -> int:
        """Snapshot the stock and watched fields of every product (and variant) not seen yet,
        so the first change after connecting already has a level and values to compare with.
        Returns how many were taken."""
        fields = ",".join(
            ("inventory_level", "inventory_warning_level", "inventory_tracking", "date_modified",
             *PRODUCT_FIELDS)
        )  # fmt: skip
        query = {"include": "variants", "include_fields": fields}
        changes: dict[SnapKey, Snapshot | None] = {}
        self.snapshots.load_store(handle.id)
        with handle.client.sends() as sends:
            async for product in handle.client.paginate_v3("/catalog/products", query):
                self._first_seen(handle, product, sends.at[-1], changes)
        return await self._keep_first(handle.id, changes)

    def _first_seen(
        self,
        handle: StoreHandle,
        product: dict[str, Any],
        read_at: datetime,
        changes: dict[SnapKey, Snapshot | None],
    ) -> None:
        """The snapshots of a listed product and its variants, those not seen yet, into
        ``changes``; the product's with when its page was requested (``read_at``)."""
        seen = self.snapshots.known
        pid, tracking = int(product["id"]), str(product.get("inventory_tracking") or "none")
        stamp = str(product.get("date_modified") or "")
        key = (handle.id, "product", pid)
        if not seen(key):
            changes[key] = Snapshot(
                int(product.get("inventory_level") or 0),
                int(product.get("inventory_warning_level") or 0),
                tracking != "none",
                stamp=stamp,
                fields=watched(product, PRODUCT_FIELDS),
                read_at=read_at,
            )
        for variant in product.get("variants") or []:
            vkey = (handle.id, "variant", int(variant["id"]))
            if not variant.get("option_values") or seen(vkey):
                continue
            vfields = watched(variant, VARIANT_FIELDS)
            changes[vkey] = (
                Snapshot(
                    int(variant.get("inventory_level") or 0),
                    int(variant.get("inventory_warning_level") or 0),
                    True,
                    stamp=stamp,
                    parent=pid,
                    fields=vfields,
                )
                if tracking == "variant"
                else Snapshot(parent=pid, fields=vfields)
            )

    async def _keep_first(self, store_id: str, changes: dict[SnapKey, Snapshot | None]) -> int:
        """Store the baseline's snapshots where there is still none, by the rule normalisation
        follows across processes: each write checks, under the snapshots' locks, that what it
        read (no snapshot) is still so; one another process stored meanwhile is newer than the
        listing and is kept. Returns how many were stored."""
        items, kept = list(changes.items()), 0
        for start in range(0, len(items), BASELINE_CHUNK):
            chunk = dict(items[start : start + BASELINE_CHUNK])
            for _ in range(CONFLICT_TRIES):
                try:
                    await self.engine.db.writer.write(partial(self._store_new, chunk))
                    break
                except SnapshotConflict as conflict:
                    await self.snapshots.settled(conflict.keys)
                    self.snapshots.forget(conflict.keys)
                    self.snapshots.load_store(store_id)
                    chunk = {k: v for k, v in chunk.items() if not self._present(k)}
            else:
                raise SnapshotConflict(chunk)
            self.snapshots.remember(chunk)
            kept += len(chunk)
        return kept

    def _present(self, key: SnapKey) -> bool:
        """After :meth:`Snapshots.load_store`: whether the database has a snapshot of ``key``."""
        return self.snapshots.known(key) and self.snapshots.get(key) is not None

    def _store_new(self, changes: dict[SnapKey, Snapshot | None], tx: Any) -> None:
        self.snapshots.verify(tx, dict.fromkeys(changes))
        self.snapshots.save(tx, changes)

    # -- reconciliation --------------------------------------------------------------------------
    async def reconcile_all(self) -> dict[str, dict[str, Any]]:
        """Reconcile every connected store; a failing store does not stop the others."""
        report = {}
        for store_id in self.stores.store_ids():
            report[store_id] = await self.reconcile(store_id)
        await self.writes.prune()
        return report

    async def reconcile(self, store_id: str) -> dict[str, Any]:
        started = self.engine.clock.now()
        try:
            handle = await self.stores.by_id(store_id)
            hooks = await self.stores.ensure_hooks(handle)
            caught = await self.catch_up(handle)
        except Exception as exc:
            log.warning("reconciling store %s failed: %s", store_id, exc)
            report: dict[str, Any] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            await self._save_sync(
                store_id, {"last_reconcile_at": started, "last_error": report["error"][:2000]}
            )
        else:
            report = {
                "ok": True,
                "hooks": {k: v for k, v in hooks.items() if k != "hooks"},
                **caught,
            }
            await self._save_sync(store_id, {"last_reconcile_at": started, "last_error": None})
        self.reconciled[store_id] = {**report, "at": started.isoformat()}
        return report

    def _cursors(self, store_id: str) -> tuple[datetime, datetime]:
        def read(tx: Any) -> Any:
            return tx.conn.execute(select(SYNC).where(SYNC.c.store_id == store_id)).first()

        row = self.engine.db.read_sync(read)
        default = self.engine.clock.now() - timedelta(seconds=2 * self.config.reconcile_interval)

        def aware(value: datetime | None) -> datetime:
            if value is None:
                return default
            return value if value.tzinfo else value.replace(tzinfo=UTC)

        return (aware(row.products_since), aware(row.orders_since)) if row else (default, default)

    async def _save_sync(self, store_id: str, values: dict[str, Any]) -> None:
        def write(tx: Any) -> None:
            done = tx.conn.execute(update(SYNC).where(SYNC.c.store_id == store_id).values(**values))
            if done.rowcount == 0:
                tx.conn.execute(insert(SYNC), [{"store_id": store_id, **values}])

        await self.engine.db.writer.write(write)

    async def catch_up(self, handle: StoreHandle) -> dict[str, int]:
        """Feed changes the webhooks missed through normalisation; return how many."""
        products_since, orders_since = self._cursors(handle.id)
        client, counts = handle.client, {"products": 0, "orders": 0}
        newest_product, newest_order = products_since, orders_since
        query = {
            "date_modified:min": _iso(products_since),
            "include_fields": "date_modified,date_created",
        }
        async for item in client.paginate_v3("/catalog/products", query):
            newest_product = max(
                newest_product, _stamp(str(item.get("date_modified"))) or newest_product
            )
            counts["products"] += await self._missed(handle, "product", item, products_since)
        async for order in client.paginate_v2("/orders", {"min_date_modified": _iso(orders_since)}):
            newest_order = max(
                newest_order, _stamp(str(order.get("date_modified"))) or newest_order
            )
            counts["orders"] += await self._missed(handle, "order", order, orders_since)
        await self._save_sync(
            handle.id, {"products_since": newest_product, "orders_since": newest_order}
        )
        return counts

    async def _missed(
        self, handle: StoreHandle, kind: str, item: dict[str, Any], since: datetime
    ) -> int:
        """Feed a listed product or order unless its snapshot shows this version was seen; one
        never seen that was created since the last poll is fed as created."""
        ref, stamp = int(item["id"]), str(item.get("date_modified") or "")
        snap = self.snapshots.get((handle.id, kind, ref))
        if snap is not None and snap.stamp == stamp:
            return 0
        created = _stamp(str(item.get("date_created") or ""))
        change = (
            "created" if snap is None and created is not None and created >= since else "updated"
        )
        data = {"type": kind, "id": ref}
        return await self.poll(handle, f"store/{kind}/{change}", data, f"{kind}:{ref}:{stamp}")

    async def poll(self, handle: StoreHandle, scope: str, data: dict[str, Any], key: str) -> int:
        """Feed one change found by polling into normalisation; 0 if it was fed before."""
        now = self.engine.clock.now()
        envelope = {
            "scope": scope,
            "store_id": "",
            "data": data,
            "hash": "",
            "created_at": int(now.timestamp()),
            "producer": f"stores/{handle.store_hash}",
        }
        new = NewEvent(
            type="bigcommerce.poll",
            payload=envelope,
            workspace=handle.workspace,
            store=handle.store_hash,
            source="poll",
            dedup_key=dedup_key(f"poll:{handle.store_hash}:{key}"),
            occurred_at=now,
        )
        result = await self.engine.ingest(new, follow_up=[NORMALIZE])
        return 0 if result.duplicate else 1

    async def run_periodic(self) -> None:
        """Reconcile every ``reconcile_interval`` seconds of the engine's clock, forever (in the
        one process that leads, when several share the database)."""
        engine = self.engine
        every = self.config.reconcile_interval
        await periodically(engine.clock, engine.leadership, every, self.reconcile_all, "reconcile")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self.run_periodic(), name="bigcommerce-reconcile"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.stores.aclose()

    async def unregister(self, *, workspace: str, store_hash: str) -> None:
        """Remove the hooks of a disconnected store and forget it."""
        await self.stores.unregister(workspace=workspace, store_hash=store_hash)

    # -- health and metrics ----------------------------------------------------------------------
    def health(self, workspace: str, store_hash: str) -> dict[str, Any] | None:
        handle = self.stores.handle_for(workspace, store_hash)
        if handle is None:
            return None
        quota = self.stores.budget.snapshot(store_hash)
        last = self.stores.last_webhook_at.get(handle.id)
        return {
            "hooks_active": self.stores.hooks_active.get(handle.id),
            "hooks_expected": len(SCOPES),
            "quota": {
                "limit": quota.quota,
                "left": quota.left,
                "in_flight": quota.in_flight,
                "queued": quota.queued,
                "paused_for": quota.paused_for,
            },
            "last_webhook_at": last.isoformat() if last else None,
            "webhooks": self.webhooks.per_store.get(store_hash, 0),
            "requests": handle.client.stats.requests,
            "rate_limited": handle.client.stats.rate_limited,
            "reconcile": self.reconciled.get(handle.id),
        }

    def metrics(self) -> dict[str, dict[str, float]]:
        """Per store hash: requests to BigCommerce, 429s, webhooks received, read batches."""
        out: dict[str, dict[str, float]] = {}
        for handle in self.stores.handles():
            stats = handle.client.stats
            out[handle.store_hash] = {
                "requests": stats.requests,
                "rate_limited": stats.rate_limited,
                "server_errors": stats.server_errors,
                "retries": stats.retries,
                "webhooks": self.webhooks.per_store.get(handle.store_hash, 0),
                "read_batches": handle.reader.lookups,
            }
        return out

    def counters(self) -> dict[str, int]:
        """Connector-wide counts: webhooks by outcome, normalisation jobs, events by type."""
        totals = {f"webhooks_{k}": v for k, v in self.webhooks.outcomes.items()}
        totals.update({f"normalize_{k}": v for k, v in self.normalizer.counts.items()})
        return totals


async def setup(
    engine: ConnectorHost,
    secret_key: str,
    stack: contextlib.AsyncExitStack,
    *,
    config: BigCommerceConfig | None = None,
    public_base_url: Callable[[], str],
    transport: httpx.AsyncBaseTransport | None = None,
) -> BigCommerceRuntime:
    """Start the connector on ``engine`` (call it before the engine starts) and return it: the
    host serves :meth:`BigCommerceRuntime.router` and hands it stores as a
    :class:`~engine.contracts.StoreConnector`.

    ``config`` defaults to ``SOUS_BIGCOMMERCE_*``; ``public_base_url()`` is where BigCommerce
    reaches this Sous (read whenever webhooks are registered); ``transport`` reaches the store
    API instead of the network (a sandbox's simulator).
    """
    config = config or BigCommerceConfig()
    budget = shared_budget(engine)
    if budget is not None:
        stack.push_async_callback(budget.aclose)  # after the runtime's stop (the stack unwinds)
    stores = BigCommerceStores(
        engine.db,
        Cipher(secret_key),
        engine.clock,
        config,
        public_base_url=public_base_url,
        transport=transport,
        budget=budget,
    )
    runtime = BigCommerceRuntime(engine, stores, config=config)
    runtime.install()
    runtime.start()
    stack.push_async_callback(runtime.stop)
    return runtime


def shared_budget(engine: ConnectorHost) -> PostgresQuotaBudget | None:
    """On PostgreSQL, the quota budget every process of the database shares (each store's
    150 requests per 30 s are spent once, whatever the number of workers); ``None`` on SQLite,
    where one process serves the stores and keeps the budget in memory."""
    if engine.db.is_sqlite:
        return None
    url = engine.db.engine.url.set(drivername="postgresql")
    return PostgresQuotaBudget(url.render_as_string(hide_password=False), engine.clock)
