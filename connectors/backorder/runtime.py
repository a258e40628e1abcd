"""The backorder connector in a running process: the reaction job, and the periodic check.

:meth:`BackorderRuntime.install` registers the :class:`~connectors.backorder.service.Backorders`
service and the ``backorder.react`` job kind. A job of that kind points at an event in the
inbox (its ``ref`` is the event id) and runs :func:`~connectors.backorder.handlers.on_order` or
:func:`~connectors.backorder.handlers.on_stock` for it. Jobs get there in one of two ways:

* durable: whoever ingests BigCommerce order and stock events passes
  ``follow_up=follow_ups(event_type)`` to ``engine.ingest``, so the job is written with the
  event in one transaction;
* ``install(listen=True)`` (the default): a listener on the engine's notifications enqueues the
  job right after such an event is stored. A crash between the two loses the reaction to that
  event (the periodic stock poll still notices restocks, but not the order).

:meth:`BackorderRuntime.tick` runs :func:`check_dates` and :func:`reconcile`; a scheduler can
call it, or :meth:`start` runs it every ``check_interval`` seconds of the engine's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from engine import (
    Event,
    Job,
    NewEvent,
    NewJob,
    complete,
    load_event,
    periodically,
    put_back,
    retry_delay,
)

from .handlers import check_dates, on_order, on_stock, reconcile
from .service import Backorders, Emit

if TYPE_CHECKING:
    from engine import ConnectorHost

log = logging.getLogger("sous.backorder")

JOB = "backorder.react"
ORDER_EVENTS = frozenset(
    {
        "bigcommerce.order.created",
        "bigcommerce.order.updated",
        "bigcommerce.order.status_changed",
        "bigcommerce.order.refunded",
    }
)
STOCK_EVENTS = frozenset(
    {
        f"bigcommerce.{kind}.{name}"
        for kind in ("product", "variant")
        for name in ("inventory_changed", "out_of_stock", "back_in_stock")
    }
)


def follow_ups(event_type: str) -> tuple[str, ...]:
    """The job kinds to enqueue with an event of this type (for ``engine.ingest``)."""
    return (JOB,) if event_type in ORDER_EVENTS or event_type in STOCK_EVENTS else ()


class BackorderRuntime:
    def __init__(
        self, engine: ConnectorHost, service: Backorders, *, max_attempts: int = 8
    ) -> None:
        self.engine = engine
        self.service = service
        self.max_attempts = max_attempts
        self.counts: dict[str, int] = {}
        self._unsubscribe: Any = None
        self._task: asyncio.Task[None] | None = None
        self._enqueuing: set[asyncio.Task[None]] = set()

    def install(self, *, listen: bool = True, concurrency: int = 32) -> None:
        self.engine.services.add(self.service)
        self.engine.services.add(self)
        self.engine.handle(JOB, self.handle, concurrency)
        if listen:
            self._unsubscribe = self.engine.subscribe(self._heard)

    def emit_for(self, workspace: str) -> Emit:
        async def emit(new: NewEvent) -> None:
            await self.engine.ingest(new)

        return emit

    # -- reactions -----------------------------------------------------------------------------
    def _heard(self, kind: str, data: dict[str, Any]) -> None:
        if kind != "event" or not follow_ups(str(data.get("type"))):
            return
        # Through the engine's writer, the only one: a second writer would invalidate its
        # transaction's snapshot on SQLite.
        task = asyncio.get_running_loop().create_task(self._enqueue(str(data["id"])))
        self._enqueuing.add(task)
        task.add_done_callback(self._enqueuing.discard)

    async def _enqueue(self, event_id: str) -> None:
        job = NewJob(JOB, event_id)
        await self.engine.db.writer.write(lambda tx: self.engine.queue.enqueue(tx, [job]))

    @property
    def enqueuing(self) -> int:
        """Reaction jobs heard of but not yet in the queue (``engine.drain`` does not see them)."""
        return len(self._enqueuing)

    async def settle(self) -> None:
        """Wait until every reaction heard of is in the queue (tests, shutdown)."""
        while self._enqueuing:
            await asyncio.gather(*list(self._enqueuing), return_exceptions=True)

    async def handle(self, job: Job) -> None:
        ref = job.ref
        event = await self.engine.db.read(lambda tx: load_event(tx, ref))
        try:
            if event is not None:
                await self.react(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            delay = retry_delay(job, exc, self.max_attempts)
            if delay is not None:
                log.warning("backorder reaction to %s: %s; retrying in %.0fs", job.ref, exc, delay)
                await put_back(self.engine.db, self.engine.queue, self.engine.clock, job, delay)
                return
            log.error(
                "backorder reaction to %s: %s; dropped (attempt %d)", job.ref, exc, job.attempts + 1
            )
        self._count("jobs")
        await complete(self.engine.db, self.engine.queue, self.engine.clock, job)

    async def react(self, event: Event) -> None:
        if event.store is None:
            return
        emit = self.emit_for(event.workspace)
        payload = event.payload
        if event.type in ORDER_EVENTS and isinstance(payload.get("order"), dict):
            await on_order(
                self.service,
                event.workspace,
                event.store,
                payload["order"],
                emit=emit,
                caused_by=event.caused_by,
            )
            self._count("orders")
        elif event.type in STOCK_EVENTS and isinstance(payload.get("product"), dict):
            product_id = int(payload["product"]["id"])
            await on_stock(self.service, event.workspace, event.store, [product_id], emit=emit)
            self._count("stock")

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    # -- the periodic check --------------------------------------------------------------------
    async def tick(self) -> dict[str, Any]:
        """Switch off backorders whose date came, then reconcile every managed product."""
        closed = await check_dates(self.service, emit_for=self.emit_for)
        products = await reconcile(self.service, emit_for=self.emit_for)
        self._count("ticks")
        return {"dates_reached": closed, "products": products}

    async def run_periodic(self) -> None:
        engine, every = self.engine, self.service.settings.check_interval
        await periodically(engine.clock, engine.leadership, every, self.tick, "backorder check")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self.run_periodic(), name="backorder-check"
        )

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self.settle()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
