"""Coalesced, batched reads: many ``get(id)`` calls in a short window become one request.

Webhooks carry only ids [webhooks.md §1], so a burst of 500 product events would cost 500
``GET /v3/catalog/products/{id}`` calls against a quota of 150 per 30 s. A
:class:`ProductReader` instead collects the ids asked for during ``window`` seconds and fetches
them with ``GET /v3/catalog/products?id:in=...`` (up to 250 per request).

Only lookups that have not been sent yet are shared. A batch waits for the store's budget to
let a request go (:meth:`BigCommerceClient.slot`) and keeps taking ids meanwhile, so while the
quota is spent the ids asked for pile up in one request instead of many. A ``get`` that
arrives once the request for the same id is on the wire starts a new one, because that request
may predate the change the caller was told about. :meth:`BatchReader.read` also tells when the
request that answered was sent: what it found is at least that recent, which orders reads
made by different processes (a read asked for earlier may be sent later).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

from connectors.bigcommerce.client import MAX_PAGE, BigCommerceClient, JSONDict
from engine import Clock

T = TypeVar("T")


def _consume(fut: asyncio.Future[Any]) -> None:
    # Mark a failure as retrieved even if every waiter went away, so asyncio doesn't log it.
    if not fut.cancelled():
        fut.exception()


Found = tuple[datetime | None, T | None]
"""When the request that answered was sent, and what it found."""


class BatchReader(Generic[T]):
    """Collects ids for ``window`` seconds (or until ``max_batch``), then, once the store's
    budget lets a request go, looks up every id collected by then at once."""

    def __init__(
        self,
        client: BigCommerceClient,
        *,
        window: float = 0.05,
        max_batch: int = MAX_PAGE,
        clock: Clock | None = None,
    ) -> None:
        if not 1 <= max_batch <= MAX_PAGE:
            raise ValueError(f"max_batch must be between 1 and {MAX_PAGE}")
        self.client = client
        self.window = window
        self.max_batch = max_batch
        self.clock: Clock = clock or client.clock
        self.lookups = 0
        """How many batches were sent (each may take more than one request if paginated)."""
        self._pending: dict[int, asyncio.Future[Found[T]]] = {}
        self._queued: dict[int, asyncio.Future[Found[T]]] = {}  # flushed, waiting for a slot
        self._timer: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, key: int) -> T | None:
        """The resource for ``key``, or ``None`` if the store has none."""
        return (await self.read(key))[1]

    async def read(self, key: int) -> Found[T]:
        """The resource for ``key`` (``None`` if the store has none) and when the request that
        found it was sent."""
        key = int(key)
        fut = self._pending.get(key) or self._queued.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            fut.add_done_callback(_consume)
            self._pending[key] = fut
            if len(self._pending) >= self.max_batch:
                self._flush()
            elif self._timer is None:
                self._timer = self._spawn(self._flush_later())
        return await asyncio.shield(fut)

    async def get_many(self, keys: list[int]) -> dict[int, T | None]:
        values = await asyncio.gather(*(self.get(k) for k in keys))
        return dict(zip((int(k) for k in keys), values, strict=True))

    async def aclose(self) -> None:
        """Send what is pending and wait for every lookup in progress."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flush()
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _lookup(self, keys: list[int]) -> Mapping[int, T]:
        raise NotImplementedError

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _flush_later(self) -> None:
        await self.clock.sleep(self.window)
        self._timer = None
        self._flush()

    def _flush(self) -> None:
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()
        self._timer = None
        if not self._pending:
            return
        self._queued.update(self._pending)
        self._pending = {}
        if self._sender is None:
            self._sender = self._spawn(self._send())

    async def _send(self) -> None:
        """While ids wait: take a request slot, then send every id waiting by then (up to
        ``max_batch``) in one lookup."""
        try:
            while self._queued:
                try:
                    await self.client.slot()
                except BaseException as exc:
                    for fut in self._queued.values():
                        _fail(fut, exc)
                    self._queued.clear()
                    raise
                keys = list(self._queued)[: self.max_batch]
                batch = {key: self._queued.pop(key) for key in keys}
                self._spawn(self._resolve(batch))
        finally:
            self._sender = None

    async def _resolve(self, batch: dict[int, asyncio.Future[Found[T]]]) -> None:
        self.lookups += 1
        try:
            with self.client.sends(permit=True) as sends:
                found = await self._lookup(list(batch))
        except asyncio.CancelledError:
            for fut in batch.values():
                fut.cancel()
            raise
        except Exception as exc:
            for fut in batch.values():
                _fail(fut, exc)
            return
        sent = min(sends.at) if sends.at else None
        for key, fut in batch.items():
            if not fut.done():
                fut.set_result((sent, found.get(key)))


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if fut.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        fut.cancel()
    else:
        fut.set_exception(exc)


class ProductReader(BatchReader[JSONDict]):
    """``await reader.get(product_id)``: the v3 product (with ``include``), or ``None``."""

    def __init__(
        self,
        client: BigCommerceClient,
        *,
        window: float = 0.05,
        max_batch: int = MAX_PAGE,
        clock: Clock | None = None,
        include: str | None = "variants,custom_fields",
    ) -> None:
        super().__init__(client, window=window, max_batch=max_batch, clock=clock)
        self.include = include

    async def _lookup(self, keys: list[int]) -> Mapping[int, JSONDict]:
        products = await self.client.get_products(keys, include=self.include)
        return {int(p["id"]): p for p in products if "id" in p}


class VariantsReader(BatchReader[list[JSONDict]]):
    """``await reader.get(product_id)`` returns that product's variants, batched with
    ``GET /v3/catalog/variants?product_id:in=...``; ``None`` when the product has none."""

    async def _lookup(self, keys: list[int]) -> Mapping[int, list[JSONDict]]:
        grouped: dict[int, list[JSONDict]] = {}
        params = {"product_id:in": keys}
        async for variant in self.client.paginate_v3("/catalog/variants", params):
            grouped.setdefault(int(variant["product_id"]), []).append(variant)
        return grouped
