"""The :class:`Backorders` service: assign and update, and keep the store in step (unassigning
is in :mod:`connectors.backorder.stock`, next to the restock it may turn into).

One instance per process (``services.add(Backorders(...))``). Everything that changes a
product's assignments or writes the product holds that product's lock, so two steps or jobs
about the same product never interleave their read-compare-write of the store. Events go out
through the ``emit`` function the caller passes (``ctx.emit`` in actions, ``engine.ingest`` in
the runtime), each with a deterministic dedup key.

Order of work: the database first (what the assignment now is), then the events, then the
store. A store write that fails is retried by the step or job, and in any case made by the
periodic reconcile, which compares every managed product with what its assignments say;
events are never lost to a failed store write, and a repeat is deduplicated by its key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from connectors.bigcommerce.client import BigCommerceClient
from connectors.bigcommerce.errors import BigCommerceError
from engine import CausedBy, Clock, Database, NewEvent, NotFoundError, PermanentError

from . import eta, events as ev, ledger, storefront
from .config import BackorderSettings, ClientProvider, client_for
from .models import (
    ACTIVE,
    ARMED,
    CLOSED,
    BackorderAssignmentRow,
    BackorderLineRow,
    BackorderProductRow,
)
from .script import StorefrontScripts
from .storefront import Applied, Deduction

log = logging.getLogger("sous.backorder")

Emit = Callable[[NewEvent], Awaitable[Any]]
CONFIG_FIELDS = (
    "backorder_limit",
    "message",
    "back_in_stock_date",
    "incoming_quantity",
    "lead_time_days",
    "release_on_cancel",
    "reserve_on_restock",
)
ETA_FIELDS = ("back_in_stock_date", "incoming_quantity", "lead_time_days")


@dataclass
class Change:
    """An assignment after a call, and what the call did to it."""

    row: BackorderAssignmentRow
    created: bool = False
    changes: list[str] = field(default_factory=list)
    reached: bool = False
    reopened: bool = False
    applied: Applied = field(default_factory=Applied)
    eta_before: date | None = None
    waiting: list[BackorderLineRow] = field(default_factory=list)
    """When the ETA moved: the lines still waiting, whose customers are to hear of it."""


class Backorders:
    def __init__(
        self,
        db: Database,
        clients: ClientProvider,
        clock: Clock,
        settings: BackorderSettings | None = None,
    ) -> None:
        self.db = db
        self.clients = clients
        self.clock = clock
        self.settings = settings or BackorderSettings()
        self._locks: dict[tuple[str, str, int], asyncio.Lock] = {}
        self.scripts = StorefrontScripts(db, clock, self.settings)
        """The storefront script (button, message, cart message) of each store."""

    def lock(self, workspace: str, store: str, product_id: int) -> asyncio.Lock:
        return self._locks.setdefault((workspace, store, product_id), asyncio.Lock())

    async def client(self, workspace: str, store: str | None) -> BigCommerceClient:
        return await client_for(self.clients, workspace, store)

    def today(self) -> date:
        return self.clock.now().date()

    # -- store -----------------------------------------------------------------------------------
    async def sync(
        self,
        client: BigCommerceClient,
        workspace: str,
        store: str,
        product_id: int,
        product: dict[str, Any] | None = None,
        *,
        ending: frozenset[str] = frozenset(),
    ) -> Applied:
        """Bring the product on the store to what its assignments say (hold the product lock);
        ``ending`` names assignments to leave out, as if already ended."""

        def state(s: Session) -> tuple[BackorderProductRow | None, list[BackorderAssignmentRow]]:
            return ledger.product_row(s, workspace, store, product_id), ledger.live(
                s, workspace, store, [product_id]
            )

        managed, rows = ledger.read(self.db, state)
        rows = [r for r in rows if r.id not in ending]
        if managed is None:
            return Applied()
        if product is None:
            product = await storefront.fetch(client, product_id)
        desired = storefront.desired_state(managed.previous, rows, product, self.settings)
        cuts = [Deduction.from_dict(c) for c in (managed.deduction or {}).get("cuts", [])]
        applied = await storefront.apply(
            client, product, desired, managed.previous, self.settings, cuts
        )

        def settle(s: Session) -> None:
            row = ledger.product_row(s, workspace, store, product_id)
            if row is None:
                return
            if not ledger.live(s, workspace, store, [product_id]):
                s.delete(row)
            elif row.deduction:
                row.deduction = None
                row.updated_at = self.clock.now()
                s.add(row)

        if (not rows and not ending) or cuts:
            await ledger.write(self.db, settle)
        await self.refresh_script(client, workspace, store, ending)
        return applied

    async def refresh_script(
        self,
        client: BigCommerceClient,
        workspace: str,
        store: str,
        ending: frozenset[str] = frozenset(),
    ) -> None:
        """Bring the storefront script in step (created with the first assignment); a failure
        is logged, not raised: the product is already right, and the next sync tries again."""
        try:
            await self.scripts.refresh(client, workspace, store, leaving=ending)
        except BigCommerceError as exc:
            log.warning("store %s: the storefront script could not be written: %s", store, exc)

    # -- actions ---------------------------------------------------------------------------------
    async def assign(
        self,
        workspace: str,
        store: str | None,
        product_id: int,
        variant_id: int | None,
        config: dict[str, Any],
        *,
        key: str,
        emit: Emit,
    ) -> Change:
        """Put a product or variant on backorder with ``config`` (every field of
        :data:`CONFIG_FIELDS`); assigning the same again changes nothing."""
        client = await self.client(workspace, store)
        assert store is not None
        async with self.lock(workspace, store, product_id):
            product = await storefront.fetch(client, product_id)
            if variant_id is not None and storefront.find_variant(product, variant_id) is None:
                raise PermanentError(
                    f"variant {variant_id} is not an option variant of product {product_id}"
                )
            self._check(config, self.today())
            now = self.clock.now()

            def txn(s: Session) -> Change:
                managed = ledger.product_row(s, workspace, store, product_id)
                if managed is None:
                    managed = BackorderProductRow(
                        workspace_id=workspace,
                        store=store,
                        product_id=product_id,
                        previous=storefront.snapshot(product, self.settings),
                        created_at=now,
                        updated_at=now,
                    )
                    s.add(managed)
                row = ledger.find_live(s, workspace, store, product_id, variant_id)
                if row is not None:
                    change = self._reconfigure(s, row, config, now)
                    change.created = row.created_key == key
                    s.add(row)
                    return change
                level = storefront.stock_level(product, managed.previous, variant_id)
                untracked = storefront.tracking(managed.previous) == "none"
                variant = storefront.find_variant(product, variant_id) if variant_id else None
                row = BackorderAssignmentRow(
                    id=ledger.new_assignment_id(),
                    workspace_id=workspace,
                    store=store,
                    product_id=product_id,
                    variant_id=variant_id,
                    product_name=str(product.get("name") or "")[:250],
                    sku=str((variant or product).get("sku") or "")[:255],
                    status=ARMED,
                    created_key=key,
                    created_at=now,
                    updated_at=now,
                    **config,
                )
                self._set_eta(row, now.date())
                if untracked or level <= 0:
                    ledger.activate(row, now)
                s.add(row)
                return Change(row, created=True)

            change = await ledger.write(self.db, txn)
            await self._announce(change, workspace, store, emit)
            change.applied = await self.sync(client, workspace, store, product_id, product)
        return change

    async def update(
        self,
        workspace: str,
        store: str | None,
        product_id: int,
        variant_id: int | None,
        values: dict[str, Any],
        *,
        emit: Emit,
    ) -> Change:
        client = await self.client(workspace, store)
        assert store is not None
        async with self.lock(workspace, store, product_id):
            now = self.clock.now()

            def txn(s: Session) -> Change:
                row = ledger.find_live(s, workspace, store, product_id, variant_id)
                if row is None:
                    raise NotFoundError("backorder assignment", _target(product_id, variant_id))
                merged = {name: values.get(name, getattr(row, name)) for name in CONFIG_FIELDS}
                self._check(merged, now.date(), dated="back_in_stock_date" in values)
                change = self._reconfigure(s, row, merged, now)
                s.add(row)
                return change

            try:
                change = await ledger.write(self.db, txn)
            except NotFoundError as exc:
                raise PermanentError(str(exc)) from None
            await self._announce(change, workspace, store, emit)
            # always: a retry after a failed write finds nothing left to change in the database
            change.applied = await self.sync(client, workspace, store, product_id)
        return change

    # -- helpers ---------------------------------------------------------------------------------
    def _check(self, config: dict[str, Any], today: date, *, dated: bool = True) -> None:
        """Refuse a back-in-stock date in the past (when ``dated``: the date is being set) and
        a message that promises a date there is none for."""
        when = config.get("back_in_stock_date")
        if dated and when is not None and when < today:
            raise PermanentError(f"back_in_stock_date {when} is in the past")
        probe = eta.compute(
            today=today,
            back_in_stock_date=when,
            incoming_quantity=config.get("incoming_quantity"),
            lead_time_days=int(config.get("lead_time_days") or 0),
        )
        problem = eta.check(str(config.get("message") or ""), probe.day)
        if problem:
            raise PermanentError(problem)

    def _set_eta(self, row: BackorderAssignmentRow, today: date) -> None:
        found = eta.compute(
            today=today,
            back_in_stock_date=row.back_in_stock_date,
            incoming_quantity=row.incoming_quantity,
            lead_time_days=row.lead_time_days,
        )
        row.eta, row.eta_source = found.day, found.source

    def _reconfigure(
        self, s: Session, row: BackorderAssignmentRow, config: dict[str, Any], now: datetime
    ) -> Change:
        change = Change(row, eta_before=row.eta)
        change.changes = [n for n in CONFIG_FIELDS if n in config and getattr(row, n) != config[n]]
        for name in change.changes:
            setattr(row, name, config[name])
        if set(change.changes) & set(ETA_FIELDS):
            self._set_eta(row, now.date())
            if row.eta != change.eta_before:
                change.waiting = ledger.waiting_lines(s, row.id)
        if row.status == ACTIVE and row.units >= row.backorder_limit:
            ledger.close(row, ledger.LIMIT_REACHED, now)
            change.reached = True
        elif reopenable(row, now.date()):
            reopen(row)
            change.reopened = True
        if change.changes or change.reached or change.reopened:
            row.version += 1
            row.updated_at = now
        return change

    async def _announce(self, change: Change, workspace: str, store: str, emit: Emit) -> None:
        row = change.row
        payload = ev.base(row, self.settings)
        if change.created:
            await self.send(
                emit,
                ev.ASSIGNED,
                workspace,
                store,
                payload,
                ev.key(workspace, store, row.id, "assigned"),
            )
        elif change.changes or change.reopened:
            body = {
                **payload,
                "changes": change.changes or ["status"],
                "reason": "reopened" if change.reopened and not change.changes else "update",
            }
            await self.send(
                emit,
                ev.UPDATED,
                workspace,
                store,
                body,
                ev.key(workspace, store, row.id, "updated", row.version),
            )
        for told in ev.order_eta_changed(row, self.settings, change.waiting, change.eta_before):
            await self.send(
                emit,
                ev.ORDER_ETA_CHANGED,
                workspace,
                store,
                told.model_dump(mode="json"),
                ev.key(workspace, store, row.id, "eta", row.version, told.order_id),
            )
        if change.reached:
            await self.send_limit(row, workspace, store, None, emit)

    async def send_limit(
        self,
        row: BackorderAssignmentRow,
        workspace: str,
        store: str,
        order_id: int | None,
        emit: Emit,
    ) -> None:
        body = {**ev.base(row, self.settings), "order_id": order_id}
        dedup = ev.key(workspace, store, row.id, "limit_reached", row.closures)
        await self.send(emit, ev.LIMIT_REACHED, workspace, store, body, dedup)

    async def send_unassigned(
        self,
        row: BackorderAssignmentRow,
        workspace: str,
        store: str,
        previous: dict[str, Any],
        emit: Emit,
    ) -> None:
        body = {
            **ev.base(row, self.settings),
            "reason": row.ended_reason or "unassigned",
            "restored": dict(previous["product"]),
        }
        await self.send(
            emit,
            ev.UNASSIGNED,
            workspace,
            store,
            body,
            ev.key(workspace, store, row.id, "unassigned"),
        )

    async def send(
        self,
        emit: Emit,
        type_: str,
        workspace: str,
        store: str,
        payload: dict[str, Any],
        dedup: str,
        caused_by: CausedBy | None = None,
    ) -> None:
        body = {
            k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v
            for k, v in payload.items()
        }
        await emit(
            NewEvent(
                type=type_,
                payload=body,
                workspace=workspace,
                store=store,
                source=ev.SOURCE,
                dedup_key=dedup,
                occurred_at=self.clock.now(),
                caused_by=caused_by,
            )
        )


def reopenable(row: BackorderAssignmentRow, today: date) -> bool:
    return (
        row.status == CLOSED
        and row.units < row.backorder_limit
        and (row.back_in_stock_date is None or row.back_in_stock_date > today)
    )


def reopen(row: BackorderAssignmentRow) -> None:
    row.status = ACTIVE
    row.closed_reason = None
    row.closed_at = None


def _target(product_id: int, variant_id: int | None) -> str:
    return f"product {product_id}" + (f" variant {variant_id}" if variant_id else "")
