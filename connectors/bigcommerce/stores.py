"""Connected stores: one :class:`BigCommerceClient` per store (all sharing one quota budget per
store), the batched product reader, cached order statuses and customer groups, and the webhooks
Sous registers on each store.

A store is read from the engine's ``store`` table (token and webhook secret decrypted with the
vault's cipher) the first time it is needed and kept. Webhooks are registered through
``/v3/hooks`` with the secret in a custom header, one per scope, pointing at
``{public_base_url}/v1/webhooks/bigcommerce/{store id}`` (the store's id in Sous, which is
unique across workspaces, unlike its hash). Registering again updates, never duplicates.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import delete, insert, select

from connectors.bigcommerce.client import BigCommerceClient, RetryPolicy
from connectors.bigcommerce.models import HOOKS, SYNC
from connectors.bigcommerce.ratelimit import MemoryQuotaBudget, QuotaBudget
from connectors.bigcommerce.reader import ProductReader
from engine import Cipher, Clock, Database, NotFoundError, StoreRow, Tx, count_sent

log = logging.getLogger("sous.bigcommerce")

SECRET_HEADER = "X-Sous-Webhook-Secret"  # noqa: S105 - a header name, not a secret
WEBHOOK_PATH = "/v1/webhooks/bigcommerce/{store}"
SCOPES: tuple[str, ...] = (
    "store/product/created",
    "store/product/updated",
    "store/product/deleted",
    "store/product/inventory/updated",
    "store/product/inventory/order/updated",
    "store/sku/created",
    "store/sku/updated",
    "store/sku/deleted",
    "store/sku/inventory/updated",
    "store/sku/inventory/order/updated",
    "store/order/created",
    "store/order/updated",
    "store/order/statusUpdated",
    "store/order/refund/created",
    "store/customer/created",
    "store/customer/updated",
    "store/shipment/created",
    "store/channel/*/inventory/product/stock_changed",
    "store/channel/*/inventory/product/low_stock_reached",
    "store/channel/*/inventory/product/out_of_stock_reached",
    "store/channel/*/inventory/product/settings_changed",
    "store/inventory/location/created",
    "store/inventory/location/updated",
)
STORES = StoreRow.__table__  # type: ignore[attr-defined]
# Reads retry briefly in the call; writes never do (the runner retries, checking state first).
CLIENT_RETRY = RetryPolicy(read_delays=(2.0, 10.0), write_delays=(), network_delays=(1.0, 5.0))


class BigCommerceConfig(BaseSettings):
    """``SOUS_BIGCOMMERCE_*`` settings of the connector."""

    model_config = SettingsConfigDict(env_prefix="SOUS_BIGCOMMERCE_", extra="ignore")

    public_base_url: str | None = Field(
        default=None, description="where BigCommerce reaches Sous (https on 443 in production)"
    )
    reconcile_interval: float = Field(default=300.0, gt=0, description="seconds between reconciles")
    attribution_window: float = Field(default=120.0, gt=0, description="own-write window, seconds")
    read_window: float = Field(
        default=1.0, ge=0, description="seconds product reads are gathered into one request"
    )
    normalize_concurrency: int = Field(default=256, ge=1)
    client_timeout: float = Field(default=30.0, gt=0)
    cache_ttl: float = Field(default=3600.0, ge=0, description="order statuses, customer groups")
    auth_ttl: float = Field(default=30.0, ge=0, description="store credentials cached this long")


@dataclass
class StoreHandle:
    """Everything Sous holds for one connected store."""

    id: str
    workspace: str
    store_hash: str
    secret: str
    client: BigCommerceClient
    reader: ProductReader
    cache_ttl: float
    fingerprint: str = ""
    """Changes when the token, secret or base URL does (the handle is then rebuilt)."""
    _statuses: dict[int, str] = field(default_factory=dict)
    _groups: dict[int, str] = field(default_factory=dict)
    _fetched: dict[str, float] = field(default_factory=dict)

    async def _cached(self, name: str, target: dict[int, str], fetch: Any) -> dict[int, str]:
        now = self.client.clock.monotonic()
        if target and now - self._fetched.get(name, -1e18) < self.cache_ttl:
            return target
        rows = await fetch()
        target.clear()
        for row in rows:
            target[int(row["id"])] = str(row.get("custom_label") or row.get("name") or row["id"])
        self._fetched[name] = now
        return target

    async def order_statuses(self) -> dict[int, str]:
        """Status id → name (``GET /v2/order_statuses``, cached)."""
        return await self._cached("statuses", self._statuses, self.client.order_statuses)

    async def customer_groups(self) -> dict[int, str]:
        """Group id → name (``GET /v2/customer_groups``, cached)."""
        return await self._cached("groups", self._groups, self.client.customer_groups)


@dataclass(frozen=True)
class _Row:
    id: str
    workspace: str
    store_hash: str
    api_base_url: str
    token: str
    secret: str

    @property
    def fingerprint(self) -> str:
        text = f"{self.api_base_url}\n{self.token}\n{self.secret}"
        return hashlib.sha256(text.encode()).hexdigest()


class BigCommerceStores:
    """The connected stores of this process (a service: ``ctx.services.get(BigCommerceStores)``)."""

    def __init__(
        self,
        db: Database,
        cipher: Cipher,
        clock: Clock,
        config: BigCommerceConfig | None = None,
        *,
        public_base_url: str | Callable[[], str] = "http://127.0.0.1:8000",
        transport: httpx.AsyncBaseTransport | None = None,
        budget: QuotaBudget | None = None,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.clock = clock
        self.config = config or BigCommerceConfig()
        self._public_base_url = self.config.public_base_url or public_base_url
        self.transport = transport
        self.budget: QuotaBudget = budget or MemoryQuotaBudget(clock)
        self._handles: dict[str, StoreHandle] = {}
        self._by_hash: dict[tuple[str, str], str] = {}
        self._auth: dict[str, tuple[float, _Row | None]] = {}
        self._lock = asyncio.Lock()
        self.hooks_active: dict[str, int] = {}
        self.last_webhook_at: dict[str, datetime] = {}

    # -- lookup ----------------------------------------------------------------------------------
    def _read(self, **where: str) -> _Row | None:
        def read(tx: Tx) -> Any:
            query = select(STORES)
            for name, value in where.items():
                query = query.where(STORES.c[name] == value)
            return tx.conn.execute(query).first()

        row = self.db.read_sync(read)
        if row is None:
            return None
        return _Row(
            row.id,
            row.workspace_id,
            row.store_hash,
            row.api_base_url,
            self.cipher.decrypt(row.access_token_enc),
            self.cipher.decrypt(row.webhook_secret_enc),
        )

    def auth(self, store_id: str) -> tuple[str, str, str, str] | None:
        """``(id, workspace, store_hash, webhook secret)`` of a store by its Sous id (cached)."""
        now = self.clock.monotonic()
        cached = self._auth.get(store_id)
        if cached is None or now - cached[0] > self.config.auth_ttl:
            row = self._read(id=store_id) if len(store_id) <= 40 else None
            cached = (now, row)
            self._auth[store_id] = cached
        row = cached[1]
        return None if row is None else (row.id, row.workspace, row.store_hash, row.secret)

    async def get(self, workspace: str, store_hash: str) -> StoreHandle:
        """The handle of a store by workspace and hash; :class:`NotFoundError` if not connected."""
        known = self._by_hash.get((workspace, store_hash))
        if known is not None and known in self._handles:
            return self._handles[known]
        row = self._read(workspace_id=workspace, store_hash=store_hash)
        if row is None:
            raise NotFoundError("store", store_hash)
        return await self._open(row)

    async def by_id(self, store_id: str) -> StoreHandle:
        if store_id in self._handles:
            return self._handles[store_id]
        row = self._read(id=store_id)
        if row is None:
            raise NotFoundError("store", store_id)
        return await self._open(row)

    def store_ids(self) -> list[str]:
        def read(tx: Tx) -> list[str]:
            return [r.id for r in tx.conn.execute(select(STORES.c.id)).all()]

        return self.db.read_sync(read)

    def _count(self, workspace: str, store_hash: str) -> None:
        """One request sent to the store: its workspace's usage (and the step's recipe)."""
        count_sent(self.db.usage, "store_requests", workspace, store_hash, self.clock.now())

    async def _open(self, row: _Row) -> StoreHandle:
        async with self._lock:
            current = self._handles.get(row.id)
            if current is not None and current.fingerprint == row.fingerprint:
                return current
            client = BigCommerceClient(
                row.store_hash,
                row.token,
                base_url=row.api_base_url,
                budget=self.budget,
                clock=self.clock,
                transport=self.transport,
                timeout=self.config.client_timeout,
                retry=CLIENT_RETRY,
                count=partial(self._count, row.workspace, row.store_hash),
            )
            reader = ProductReader(client, window=self.config.read_window, clock=self.clock)
            handle = StoreHandle(
                row.id,
                row.workspace,
                row.store_hash,
                row.secret,
                client,
                reader,
                self.config.cache_ttl,
                row.fingerprint,
            )
            self._handles[row.id] = handle
            self._by_hash[(row.workspace, row.store_hash)] = row.id
            self._auth[row.id] = (self.clock.monotonic(), row)
        if current is not None:
            await _close(current)
        return handle

    # -- registration ----------------------------------------------------------------------------
    @property
    def public_base_url(self) -> str:
        """Where BigCommerce reaches Sous (read when hooks are registered: it may be set late)."""
        found = self._public_base_url
        return (found() if callable(found) else found).rstrip("/")

    def destination(self, store_id: str) -> str:
        return self.public_base_url + WEBHOOK_PATH.format(store=store_id)

    async def register(
        self,
        *,
        workspace: str,
        store_id: str,
        store_hash: str,
        api_base_url: str,
        access_token: str,
        webhook_secret: str,
    ) -> dict[str, Any]:
        """Create or update the store's webhooks (idempotent); what the API keeps as
        ``info["webhooks"]``. Called by ``POST /v1/stores`` once the store row is saved."""
        row = _Row(store_id, workspace, store_hash, api_base_url, access_token, webhook_secret)
        handle = await self._open(row)
        report = await self.ensure_hooks(handle)
        now = self.clock.now()

        def write(tx: Tx) -> None:
            found = tx.conn.execute(select(SYNC.c.store_id).where(SYNC.c.store_id == store_id))
            if found.first() is None:
                values = {"store_id": store_id, "products_since": now, "orders_since": now}
                tx.conn.execute(insert(SYNC), [values])

        await self.db.writer.write(write)
        return report

    async def unregister(self, *, workspace: str, store_hash: str) -> None:
        """Forget a disconnected store; delete its webhooks if its token is still known."""
        store_id = self._by_hash.pop((workspace, store_hash), None)
        handle = self._handles.pop(store_id, None) if store_id else None
        if store_id is None or handle is None:
            log.info("store %s disconnected; its webhooks could not be removed here", store_hash)
            return
        self._auth[store_id] = (self.clock.monotonic(), None)
        try:
            for hook in await handle.client.list_hooks():
                if hook.get("destination") == self.destination(store_id):
                    await handle.client.delete_hook(int(hook["id"]))
        except Exception as exc:  # the store may already be gone
            log.warning("could not delete the webhooks of store %s: %s", store_hash, exc)
        finally:
            await _close(handle)

        def write(tx: Tx) -> None:
            tx.conn.execute(delete(HOOKS).where(HOOKS.c.store_id == store_id))
            tx.conn.execute(delete(SYNC).where(SYNC.c.store_id == store_id))

        await self.db.writer.write(write)

    async def ensure_hooks(self, handle: StoreHandle) -> dict[str, Any]:
        """Make the store's hooks exactly one active hook per scope in :data:`SCOPES` pointing
        at Sous with the current secret: create what is missing, re-activate and fix what
        BigCommerce deactivated or what changed, delete duplicates and scopes no longer used."""
        client, dest = handle.client, self.destination(handle.id)
        suffix = WEBHOOK_PATH.format(store=handle.id)
        headers = {SECRET_HEADER: handle.secret}
        ours = [
            h for h in await client.list_hooks() if str(h.get("destination", "")).endswith(suffix)
        ]
        by_scope: dict[str, list[dict[str, Any]]] = {}
        for listed in sorted(ours, key=lambda h: int(h["id"])):
            by_scope.setdefault(str(listed["scope"]), []).append(listed)
        counts = {"created": 0, "updated": 0, "reactivated": 0, "deleted": 0}
        kept: dict[str, dict[str, Any]] = {}
        doomed = [
            h for scope, found in by_scope.items() for h in found[1 if scope in SCOPES else 0 :]
        ]
        changes: dict[str, Awaitable[dict[str, Any]]] = {}
        for scope in SCOPES:
            found = by_scope.get(scope, [])
            hook: dict[str, Any] | None = found[0] if found else None
            if hook is None:
                changes[scope] = client.create_hook(scope, dest, headers)
                counts["created"] += 1
                continue
            same = hook.get("destination") == dest and (hook.get("headers") or {}) == headers
            if same and hook.get("is_active"):
                kept[scope] = hook
                continue
            if not hook.get("is_active"):
                counts["reactivated"] += 1
                log.warning("store %s: re-activating the %s webhook", handle.store_hash, scope)
            else:
                counts["updated"] += 1
            body = {"destination": dest, "headers": headers, "is_active": True}
            changes[scope] = client.update_hook(int(hook["id"]), body)
        await asyncio.gather(*(client.delete_hook(int(h["id"])) for h in doomed))
        counts["deleted"] = len(doomed)
        done = await asyncio.gather(*changes.values())  # the budget paces them
        kept.update(zip(changes, done, strict=True))
        await self._save_hooks(handle.id, kept, dest)
        self.hooks_active[handle.id] = sum(1 for h in kept.values() if h.get("is_active", True))
        listing = [{"scope": s, "id": h.get("id")} for s, h in kept.items()]
        return {"destination": dest, **counts, "hooks": listing}

    async def _save_hooks(self, store_id: str, kept: dict[str, dict[str, Any]], dest: str) -> None:
        now = self.clock.now()
        rows = [
            {
                "store_id": store_id,
                "scope": scope,
                "hook_id": int(h.get("id") or 0),
                "destination": dest,
                "is_active": bool(h.get("is_active", True)),
                "updated_at": now,
            }
            for scope, h in kept.items()
        ]

        def write(tx: Tx) -> None:
            tx.conn.execute(delete(HOOKS).where(HOOKS.c.store_id == store_id))
            if rows:
                tx.conn.execute(insert(HOOKS), rows)

        await self.db.writer.write(write)

    # -- introspection ---------------------------------------------------------------------------
    def handle_for(self, workspace: str, store_hash: str) -> StoreHandle | None:
        store_id = self._by_hash.get((workspace, store_hash))
        return self._handles.get(store_id) if store_id else None

    def handles(self) -> list[StoreHandle]:
        return list(self._handles.values())

    async def aclose(self) -> None:
        for handle in list(self._handles.values()):
            await _close(handle)
        self._handles.clear()
        self._by_hash.clear()


async def _close(handle: StoreHandle) -> None:
    await handle.reader.aclose()
    await handle.client.aclose()
