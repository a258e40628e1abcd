"""The BigCommerce connector: its triggers (``events.py``) and actions (``actions.py``,
``actions_store.py``, and the reads of ``data_steps.py``). Runtime pieces (store clients, the
webhook endpoint, the normalisation job, reconciliation) are set up by
:func:`connectors.bigcommerce.wiring.setup`."""

from __future__ import annotations

from connectors.bigcommerce.actions import CATALOG_ACTIONS
from connectors.bigcommerce.actions_store import STORE_ACTIONS
from connectors.bigcommerce.data_steps import DATA_ACTIONS
from connectors.bigcommerce.events import TRIGGERS
from engine import Connector

CONNECTOR = Connector(
    name="bigcommerce",
    description="BigCommerce stores: product, stock, order, customer and shipment events from "
    "webhooks; catalog, inventory, order and customer actions through the REST API.",
    triggers=TRIGGERS,
    actions=(*CATALOG_ACTIONS, *STORE_ACTIONS, *DATA_ACTIONS),
)
