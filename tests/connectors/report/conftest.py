"""The report tests use the backorder tests' shop: the simulator over HTTP and the ledger."""

from __future__ import annotations

from tests.connectors.backorder.conftest import db, settings, shop

__all__ = ["db", "settings", "shop"]
