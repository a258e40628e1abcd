"""The connectors Sous ships, and the registry built from them.

Apart from the composition root (:mod:`sous.container`) so that commands needing only the
registry (``sous validate``, ``sous schema``) start without loading the engine and database.
"""

from __future__ import annotations

from engine.registry import Connector, Registry


def connectors() -> list[Connector]:
    """Every connector Sous ships, listed explicitly."""
    from connectors.backorder import CONNECTOR as backorder
    from connectors.bigcommerce.connector import CONNECTOR as bigcommerce
    from connectors.core import CONNECTOR as core
    from connectors.email import CONNECTOR as email
    from connectors.http import CONNECTOR as http
    from connectors.report import CONNECTOR as report
    from connectors.schedule import CONNECTOR as schedule

    return [core, schedule, bigcommerce, backorder, email, http, report]


def build_registry() -> Registry:
    return Registry(connectors())
