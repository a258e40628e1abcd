"""Backorders on BigCommerce's own fields: assign, update and unassign products or variants,
a ledger of backordered units fed by orders, limits and back-in-stock dates that switch a
backorder off, ETAs, and events for each change. ``docs/backorders.md`` explains the choices.

- Actions: ``backorder.assign``, ``backorder.update``, ``backorder.unassign``
  (:mod:`connectors.backorder.actions`).
- Triggers: ``backorder.assigned``, ``.updated``, ``.unassigned``, ``.limit_reached``,
  ``.back_in_stock_date_reached``, ``.ordered``, ``.restocked``
  (:mod:`connectors.backorder.events`).
- Services: :class:`Backorders` (register one per process) and
  :class:`BackorderRuntime` (the ``backorder.react`` job kind and the periodic check).
"""

from __future__ import annotations

from engine import Connector

from .actions import ACTIONS
from .config import BackorderSettings, ClientProvider, StoresClientProvider
from .events import TRIGGERS
from .runtime import BackorderRuntime, follow_ups
from .service import Backorders

CONNECTOR = Connector(
    name="backorder",
    description="Sell sold-out products on backorder with a limit and an expected ship date; "
    "a ledger of backordered units per order; events when limits, dates or restocks end it.",
    triggers=TRIGGERS,
    actions=ACTIONS,
)

__all__ = [
    "CONNECTOR",
    "BackorderRuntime",
    "BackorderSettings",
    "Backorders",
    "ClientProvider",
    "StoresClientProvider",
    "follow_ups",
]
