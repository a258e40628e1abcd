"""In-memory state: one :class:`Store` per store hash inside a :class:`SimulatorState`.

A store owns its catalog, customers, orders and hooks, a log of the API requests it served, counters
and the webhook events it raised. Handlers mutate a store synchronously inside one event-loop step,
so a request's changes are atomic with respect to other requests.
"""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .formats import iso
from .records import (
    Category,
    Customer,
    CustomerGroup,
    Hook,
    Order,
    OrderMessage,
    Product,
    Shipment,
    Variant,
)


@dataclass(frozen=True)
class WebhookEvent:
    """One change a store announced; delivered to every active hook whose scope matches."""

    seq: int
    store_hash: str
    scope: str
    data: dict[str, Any]
    created_at: int


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # without the ``/stores/{hash}`` prefix, e.g. ``/v3/catalog/products/12``
    query: str
    status: int
    at: datetime
    write: bool
    rate_limited: bool = False
    fault: bool = False
    #: The status the route handler produced; None when the request never reached it.
    handled_status: int | None = None

    @property
    def committed(self) -> bool:
        """A write the store applied (even when an injected error replaced the answer)."""
        return self.write and self.handled_status is not None and 200 <= self.handled_status < 300

    def public(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "time": iso(self.at),
            "write": self.write,
            "rate_limited": self.rate_limited,
            "fault": self.fault,
            "handled_status": self.handled_status,
            "committed": self.committed,
        }


@dataclass
class Counters:
    requests: int = 0
    rate_limited: int = 0
    faults: int = 0
    writes: int = 0  # write requests (POST/PUT/DELETE) the store applied (handler answered 2xx)
    unauthorized: int = 0

    def public(self) -> dict[str, int]:
        return dict(self.__dict__)


EventSink = Callable[["Store", WebhookEvent], None]


@dataclass
class Store:
    store_hash: str
    store_id: int
    name: str
    access_token: str
    client_id: str
    client_secret: str
    now: Callable[[], datetime]
    log_size: int = 100_000
    products: dict[int, Product] = field(default_factory=dict)
    variants: dict[int, Variant] = field(default_factory=dict)
    categories: dict[int, Category] = field(default_factory=dict)
    customers: dict[int, Customer] = field(default_factory=dict)
    customer_groups: dict[int, CustomerGroup] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    shipments: dict[int, Shipment] = field(default_factory=dict)
    messages: dict[int, OrderMessage] = field(default_factory=dict)
    hooks: dict[int, Hook] = field(default_factory=dict)
    locations: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Inventory locations by id (``locations.py``; location 1 is made on first use)."""
    stock_at: dict[tuple[int, int], int] = field(default_factory=dict)
    """Stock at locations other than 1, by (variant id, location id); location 1 holds the rest."""
    warning_at: dict[tuple[int, int], int] = field(default_factory=dict)
    scripts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Scripts API records by uuid (``routes_scripts.py``)."""
    app_tokens: dict[str, str] = field(default_factory=dict)
    """Access tokens of the apps installed on the store (token → client ID)."""
    events: list[WebhookEvent] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    requests: deque[RequestRecord] = field(default_factory=deque)
    sink: EventSink | None = None
    _ids: dict[str, Iterator[int]] = field(default_factory=dict)
    _event_seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _transactions: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    _FIRST_IDS = {
        "product": 111,
        "variant": 301,
        "sku": 501,
        "option": 101,
        "option_value": 1001,
        "category": 18,
        "custom_field": 1,
        "customer": 1,
        "customer_group": 1,
        "order": 100,
        "order_product": 1,
        "order_address": 1,
        "shipment": 1,
        "message": 1,
        "hook": 1,
        "refund": 1,
    }

    def accepts(self, token: str | None) -> bool:
        """The store's own token, or an installed app's."""
        return token is not None and (token == self.access_token or token in self.app_tokens)

    def next_id(self, kind: str) -> int:
        if kind not in self._ids:
            self._ids[kind] = itertools.count(self._FIRST_IDS[kind])
        return next(self._ids[kind])

    def next_transaction_id(self) -> str:
        return f"{self.store_hash}-txn-{next(self._transactions):06d}"

    # -- events ------------------------------------------------------------------------------

    def emit(self, scope: str, data: dict[str, Any]) -> WebhookEvent:
        event = WebhookEvent(
            seq=next(self._event_seq),
            store_hash=self.store_hash,
            scope=scope,
            data=data,
            created_at=int(self.now().timestamp()),
        )
        self.events.append(event)
        if self.sink is not None:
            self.sink(self, event)
        return event

    # -- request log -------------------------------------------------------------------------

    def record_request(self, record: RequestRecord) -> None:
        self.requests.append(record)
        while len(self.requests) > self.log_size:
            self.requests.popleft()
        self.counters.requests += 1
        if record.rate_limited:
            self.counters.rate_limited += 1
        if record.fault:
            self.counters.faults += 1
        if record.status == 401:
            self.counters.unauthorized += 1
        if record.committed:
            self.counters.writes += 1

    def reset_log(self) -> None:
        self.requests.clear()
        self.counters = Counters()

    # -- look-ups ----------------------------------------------------------------------------

    def variants_of(self, product_id: int) -> list[Variant]:
        return sorted(
            (v for v in self.variants.values() if v.product_id == product_id), key=lambda v: v.id
        )

    def option_variants(self, product_id: int) -> list[Variant]:
        """The product's variants that carry option values (empty for a simple product)."""
        return [v for v in self.variants_of(product_id) if v.option_values]

    def base_variant(self, product_id: int) -> Variant | None:
        for variant in self.variants_of(product_id):
            if not variant.option_values:
                return variant
        return None

    def variant_by_sku(self, sku: str) -> Variant | None:
        for variant in self.variants.values():
            if variant.sku == sku:
                return variant
        return None

    def public(self) -> dict[str, Any]:
        return {
            "store_hash": self.store_hash,
            "store_id": self.store_id,
            "name": self.name,
            "access_token": self.access_token,
            "client_id": self.client_id,
        }


class SimulatorState:
    """Every store of one simulator instance, by hash."""

    def __init__(self, now: Callable[[], datetime], *, log_size: int = 100_000) -> None:
        self.now = now
        self.log_size = log_size
        self.stores: dict[str, Store] = {}
        self.sink: EventSink | None = None
        self._store_ids = itertools.count(1_000_001)

    def add_store(
        self,
        *,
        store_hash: str | None = None,
        name: str = "Sous Sandbox Store",
        access_token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> Store:
        store_hash = store_hash or secrets.token_hex(5)
        if store_hash in self.stores:
            raise ValueError(f"store {store_hash!r} already exists")
        store = Store(
            store_hash=store_hash,
            store_id=next(self._store_ids),
            name=name,
            access_token=access_token or secrets.token_urlsafe(24),
            client_id=client_id or secrets.token_hex(8),
            client_secret=client_secret or secrets.token_urlsafe(24),
            now=self.now,
            log_size=self.log_size,
            sink=self._forward,
        )
        self.stores[store_hash] = store
        return store

    def _forward(self, store: Store, event: WebhookEvent) -> None:
        if self.sink is not None:
            self.sink(store, event)
