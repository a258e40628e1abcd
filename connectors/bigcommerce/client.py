"""Async client for the BigCommerce REST Management API (v2 and v3).

Every request goes through a :class:`~connectors.bigcommerce.ratelimit.QuotaBudget` (shared per
store across the process), retries 429s after the budget's pause, retries 5xx with configurable
growing delays, retries reads (and writes that were never sent) after network errors, and turns
error responses into the typed errors of :mod:`connectors.bigcommerce.errors`.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.metadata
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import quote

import httpx

from connectors.bigcommerce.errors import ServerError, TransportFailed, error_for_response
from connectors.bigcommerce.ratelimit import (
    H_LEFT,
    H_QUOTA,
    ClientStats as ClientStats,
    MemoryQuotaBudget,
    QuotaBudget,
    RetryPolicy as RetryPolicy,
)
from engine import Clock, SystemClock, count_usage, span

DEFAULT_BASE_URL = "https://api.bigcommerce.com/stores/{store_hash}"
MAX_PAGE = 250  # catalog `limit` maximum [conventions.md §3]
PRODUCT_BATCH = 10  # PUT /v3/catalog/products [conventions.md §6]
INVENTORY_BATCH = 2000  # inventory adjustments per payload [conventions.md §6]
CUSTOMER_CHUNK = 50  # customers v3 documents no maximum `limit`; 50 is its default

Version = Literal["v2", "v3"]
JSONDict = dict[str, Any]
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
# Failures where the request cannot have reached BigCommerce, so even a write may be resent.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass
class Sends:
    """What :meth:`BigCommerceClient.sends` records in a task: when each answered request
    went on the wire (its last attempt: the one whose answer the caller gets)."""

    at: list[datetime] = field(default_factory=list)
    permit: bool = False
    """A request slot the task already holds (:meth:`BigCommerceClient.permit`): its next
    request goes without waiting on the budget again."""


_SENDS: contextvars.ContextVar[Sends | None] = contextvars.ContextVar("bc_sends", default=None)


def _count_in_step() -> None:
    """A client that does not know its workspace counts its requests for the step in hand."""
    count_usage("store_requests")


def _version() -> str:
    try:
        return importlib.metadata.version("sous")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


@dataclass(frozen=True)
class BatchResult:
    """Outcome of a batch write: updated ``data`` and the ``errors`` of any 207 partial failure."""

    data: list[JSONDict] = field(default_factory=list)
    errors: list[JSONDict] = field(default_factory=list)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _unique(ids: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(int(i) for i in ids))


def _query(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Encode query values: lists become ``a,b,c`` (``:in`` filters), booleans lower case."""
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, list | tuple | set | frozenset):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(value)
    return out


def _body(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


class BigCommerceClient:
    """One store's REST client. Use ``async with`` or call :meth:`aclose`.

    ``budget`` should be the process-wide budget so every client for a store shares one quota;
    without it the client makes a private :class:`MemoryQuotaBudget`. ``count`` is called for
    every request that reaches the wire (retries included): the usage of the store's workspace
    (:func:`engine.count_sent`); without it a request counts only inside a run's step.
    """

    def __init__(
        self,
        store_hash: str,
        access_token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        budget: QuotaBudget | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        user_agent: str | None = None,
        retry: RetryPolicy | None = None,
        count: Callable[[], None] | None = None,
    ) -> None:
        self.store_hash = store_hash
        self._count = count or _count_in_step
        self.base_url = base_url.format(store_hash=store_hash).rstrip("/")
        self.clock: Clock = clock or SystemClock()
        self.budget: QuotaBudget = budget or MemoryQuotaBudget(self.clock)
        self.retry = retry or RetryPolicy()
        self.stats = ClientStats()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            headers={
                "X-Auth-Token": access_token,
                "Accept": "application/json",
                "User-Agent": user_agent or f"Sous/{_version()}",
            },
        )

    def __repr__(self) -> str:
        return f"BigCommerceClient(store_hash={self.store_hash!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- core -----------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        version: Version = "v3",
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one call (with retries) and return its decoded JSON, or ``None`` for no content."""
        return _body(await self.send(method, path, version=version, params=params, json=json))

    async def send(
        self,
        method: str,
        path: str,
        *,
        version: Version = "v3",
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """Like :meth:`request` but returns the successful :class:`httpx.Response`."""
        method = method.upper()
        url = f"/{version}/{path.lstrip('/')}"
        with span("store_request", store=self.store_hash, method=method, path=url):
            return await self._send(method, url, params=params, json=json)

    async def _send(
        self, method: str, url: str, *, params: Mapping[str, Any] | None, json: Any
    ) -> httpx.Response:
        query = _query(params)
        headers = {"Content-Type": "application/json"} if json is not None else None
        read = method in _READS
        delays = self.retry.read_delays if read else self.retry.write_delays
        server_tries = network_tries = limited = 0
        sends = _SENDS.get()
        while True:
            if sends is not None and sends.permit:
                sends.permit = False  # the slot taken by permit()
            else:
                await self.budget.acquire(self.store_hash)
            self.stats.requests += 1
            sent = self.clock.now()
            try:
                response = await self._http.request(
                    method, url, params=query, json=json, headers=headers
                )
            except httpx.TransportError as exc:
                if not isinstance(exc, _NOT_SENT):
                    self._count()  # it left: counted whether or not an answer came
                self.budget.observe(self.store_hash, {}, None)
                self.stats.network_errors += 1
                if (read or isinstance(exc, _NOT_SENT)) and network_tries < len(
                    self.retry.network_delays
                ):
                    await self._pause(self.retry.network_delays[network_tries])
                    network_tries += 1
                    continue
                what = "read" if read else "write (it may or may not have been applied)"
                raise TransportFailed(
                    f"no response to this {what}: {type(exc).__name__}: {exc}",
                    method=method,
                    path=url,
                ) from exc
            except BaseException:
                self.budget.observe(self.store_hash, {}, None)
                raise
            self._count()
            self.budget.observe(self.store_hash, response.headers, response.status_code)
            self._note_quota(response.headers)
            status = response.status_code
            if status < 400:
                if sends is not None:
                    sends.at.append(sent)
                return response
            if status == 429:
                self.stats.rate_limited += 1
                limited += 1
                if limited <= self.retry.max_rate_limited:
                    self.stats.retries += 1  # the budget has paused the store; acquire waits
                    continue
            error = error_for_response(response, method=method, path=url)
            if isinstance(error, ServerError):
                self.stats.server_errors += 1
                if server_tries < len(delays):
                    await self._pause(delays[server_tries])
                    server_tries += 1
                    continue
            raise error

    async def slot(self) -> None:
        """Wait until the store's budget lets one more request go and take that slot for the
        first request of a later :meth:`sends` block with ``permit`` (maybe in another task):
        a caller then decides what to ask for only once it may ask."""
        await self.budget.acquire(self.store_hash)

    @contextlib.contextmanager
    def sends(self, *, permit: bool = False) -> Iterator[Sends]:
        """Record, in this task, when each request answered inside the block was sent. With
        ``permit``, the first request uses the slot taken by :meth:`slot` (given back if the
        block makes none)."""
        record = Sends(permit=permit)
        token = _SENDS.set(record)
        try:
            yield record
        finally:
            _SENDS.reset(token)
            if record.permit:
                self.budget.observe(self.store_hash, {}, None)

    async def _pause(self, seconds: float) -> None:
        self.stats.retries += 1
        await self.clock.sleep(seconds)

    def _note_quota(self, headers: httpx.Headers) -> None:
        for name, attr in ((H_QUOTA, "last_quota"), (H_LEFT, "last_left")):
            raw = headers.get(name)
            if raw is not None and raw.strip().isdigit():
                setattr(self.stats, attr, int(raw))

    # -- pagination -----------------------------------------------------------------------

    async def paginate_v3(
        self, path: str, params: Mapping[str, Any] | None = None, *, limit: int = MAX_PAGE
    ) -> AsyncIterator[JSONDict]:
        """Yield every item of a v3 collection, page by page, following ``meta.pagination``."""
        query = dict(params or {})
        limit = max(1, min(int(query.pop("limit", limit)), MAX_PAGE))
        page = int(query.pop("page", 1))
        while True:
            body = await self.request("GET", path, params={**query, "page": page, "limit": limit})
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list) or not data:
                return
            for item in data:
                yield item
            pagination = (body.get("meta") or {}).get("pagination") or {}
            current = int(pagination.get("current_page") or page)
            total = pagination.get("total_pages")
            last = current >= int(total) if total is not None else len(data) < limit
            if last:
                return
            page = current + 1

    async def paginate_v2(
        self, path: str, params: Mapping[str, Any] | None = None, *, limit: int = MAX_PAGE
    ) -> AsyncIterator[JSONDict]:
        """Yield every item of a v2 bare-array collection; stops on 204 or a short page."""
        query = dict(params or {})
        limit = max(1, int(query.pop("limit", limit)))
        page = int(query.pop("page", 1))
        while True:
            body = await self.request(
                "GET", path, version="v2", params={**query, "page": page, "limit": limit}
            )
            if not isinstance(body, list) or not body:
                return
            for item in body:
                yield item
            if len(body) < limit:
                return
            page += 1

    async def _one(
        self,
        method: str,
        path: str,
        *,
        version: Version = "v3",
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> JSONDict:
        """One resource: the ``data`` of a v3 envelope, or a bare v2 object."""
        body = await self.request(method, path, version=version, params=params, json=json)
        if version == "v3" and isinstance(body, dict):
            body = body.get("data")
        return body if isinstance(body, dict) else {}

    # -- catalog --------------------------------------------------------------------------

    async def get_products(
        self, ids: Iterable[int], *, include: str | None = None, **params: Any
    ) -> list[JSONDict]:
        """Products by id (``id:in``, ≤ 250 per request); ids that don't exist are simply absent."""
        found: list[JSONDict] = []
        for chunk in _chunks(_unique(ids), MAX_PAGE):
            query = {**params, "id:in": list(chunk), "include": include}
            found.extend([p async for p in self.paginate_v3("/catalog/products", query)])
        return found

    async def get_product(self, product_id: int, *, include: str | None = None) -> JSONDict:
        path = f"/catalog/products/{int(product_id)}"
        return await self._one("GET", path, params={"include": include})

    async def update_product(self, product_id: int, body: Mapping[str, Any]) -> JSONDict:
        return await self._one("PUT", f"/catalog/products/{int(product_id)}", json=dict(body))

    async def update_products(self, items: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Batch update (each item needs ``id``), sent ten products per call."""
        if any("id" not in item for item in items):
            raise ValueError("every product in a batch update needs an 'id'")
        result = BatchResult()
        for chunk in _chunks(list(items), PRODUCT_BATCH):
            body = await self.request("PUT", "/catalog/products", json=[dict(i) for i in chunk])
            if isinstance(body, dict):
                result.data.extend(body.get("data") or [])
                errors = body.get("errors")  # a 207's `errorMultiStatus`
                if errors:
                    result.errors.append(errors if isinstance(errors, dict) else {"errors": errors})
        return result

    async def get_variants(self, product_id: int) -> list[JSONDict]:
        path = f"/catalog/products/{int(product_id)}/variants"
        return [v async for v in self.paginate_v3(path)]

    async def update_variant(
        self, product_id: int, variant_id: int, body: Mapping[str, Any]
    ) -> JSONDict:
        path = f"/catalog/products/{int(product_id)}/variants/{int(variant_id)}"
        return await self._one("PUT", path, json=dict(body))

    # -- inventory ------------------------------------------------------------------------

    async def adjust_inventory_absolute(
        self, items: Sequence[Mapping[str, Any]], reason: str | None = None
    ) -> list[str]:
        """Set stock levels (``PUT /inventory/adjustments/absolute``); returns transaction ids."""
        return await self._adjust("PUT", "/inventory/adjustments/absolute", items, reason)

    async def adjust_inventory_relative(
        self, items: Sequence[Mapping[str, Any]], reason: str | None = None
    ) -> list[str]:
        """Change stock levels by deltas (``POST /inventory/adjustments/relative``)."""
        return await self._adjust("POST", "/inventory/adjustments/relative", items, reason)

    async def _adjust(
        self, method: str, path: str, items: Sequence[Mapping[str, Any]], reason: str | None
    ) -> list[str]:
        ids: list[str] = []
        for chunk in _chunks(list(items), INVENTORY_BATCH):
            payload: JSONDict = {"items": [dict(i) for i in chunk]}
            if reason is not None:
                payload["reason"] = reason
            body = await self.request(method, path, json=payload)
            if isinstance(body, dict) and body.get("transaction_id") is not None:
                ids.append(str(body["transaction_id"]))
        return ids

    # -- orders (v2) ----------------------------------------------------------------------

    async def get_order(self, order_id: int) -> JSONDict:
        return await self._one("GET", f"/orders/{int(order_id)}", version="v2")

    async def get_order_products(self, order_id: int) -> list[JSONDict]:
        return [p async for p in self.paginate_v2(f"/orders/{int(order_id)}/products")]

    async def update_order(self, order_id: int, body: Mapping[str, Any]) -> JSONDict:
        return await self._one("PUT", f"/orders/{int(order_id)}", version="v2", json=dict(body))

    async def list_orders(self, **filters: Any) -> list[JSONDict]:
        """Every order matching the v2 filters (``status_id``, ``min_date_modified``, ...)."""
        return [o async for o in self.paginate_v2("/orders", filters)]

    async def order_statuses(self) -> list[JSONDict]:
        body = await self.request("GET", "/order_statuses", version="v2")
        return list(body or [])

    # -- customers ------------------------------------------------------------------------

    async def get_customers(self, ids: Iterable[int], **params: Any) -> list[JSONDict]:
        found: list[JSONDict] = []
        for chunk in _chunks(_unique(ids), CUSTOMER_CHUNK):
            query = {**params, "id:in": list(chunk)}
            found.extend([c async for c in self.paginate_v3("/customers", query, limit=len(chunk))])
        return found

    async def update_customer_v2(self, customer_id: int, body: Mapping[str, Any]) -> JSONDict:
        path = f"/customers/{int(customer_id)}"
        return await self._one("PUT", path, version="v2", json=dict(body))

    async def customer_groups(self) -> list[JSONDict]:
        return [g async for g in self.paginate_v2("/customer_groups")]

    # -- webhooks and store ---------------------------------------------------------------

    async def list_hooks(self, **filters: Any) -> list[JSONDict]:
        return [h async for h in self.paginate_v3("/hooks", filters)]

    async def create_hook(
        self,
        scope: str,
        destination: str,
        headers: Mapping[str, str] | None = None,
        *,
        is_active: bool = True,
    ) -> JSONDict:
        body: JSONDict = {"scope": scope, "destination": destination, "is_active": is_active}
        if headers is not None:
            body["headers"] = dict(headers)
        return await self._one("POST", "/hooks", json=body)

    async def update_hook(self, hook_id: int, body: Mapping[str, Any]) -> JSONDict:
        return await self._one("PUT", f"/hooks/{int(hook_id)}", json=dict(body))

    async def delete_hook(self, hook_id: int) -> None:
        await self.request("DELETE", f"/hooks/{int(hook_id)}")

    # -- storefront scripts (Scripts API: only this API account's scripts are seen) ----------

    async def list_scripts(self) -> list[JSONDict]:
        return [s async for s in self.paginate_v3("/content/scripts")]

    async def create_script(self, body: Mapping[str, Any]) -> JSONDict:
        return await self._one("POST", "/content/scripts", json=dict(body))

    async def update_script(self, uuid: str, body: Mapping[str, Any]) -> JSONDict:
        return await self._one("PUT", f"/content/scripts/{quote(uuid, safe='')}", json=dict(body))

    async def delete_script(self, uuid: str) -> None:
        await self.request("DELETE", f"/content/scripts/{quote(uuid, safe='')}")

    async def store_info(self) -> JSONDict:
        return await self._one("GET", "/store", version="v2")
