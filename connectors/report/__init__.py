"""Reports: ``report.backlog`` (the backlog and backorder report of a store) and the
``GET /v1/stores/{store}/backlog`` router (:func:`connectors.report.routes.backlog_router`).
See :mod:`connectors.report.backlog` for what counts as backlog and what the report costs in
API requests."""

from __future__ import annotations

from engine import Connector

from .action import ACTIONS

CONNECTOR = Connector(
    name="report",
    description="Backlog and backorder reports: as a recipe step to e-mail, or from the API",
    actions=ACTIONS,
)

__all__ = ["CONNECTOR"]
