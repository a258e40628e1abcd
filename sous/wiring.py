"""Register what each connector needs in a running process (services, job kinds, routers)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from engine.run.approval import ApprovalLinks
from engine.store.db import Database
from engine.store.vault import Cipher, Vault
from sous.container import Container

if TYPE_CHECKING:
    from connectors.bigcommerce.wiring import BigCommerceRuntime


async def wire(container: Container, stack: contextlib.AsyncExitStack) -> None:
    """Call before the engine starts."""
    from api.deps import current_key
    from api.routes.packs import routers as pack_routers
    from connectors.backorder.config import StoresClientProvider
    from connectors.backorder.runtime import BackorderRuntime, follow_ups
    from connectors.backorder.service import Backorders
    from connectors.email import services_from_settings as email_services
    from connectors.http import services_from_settings as http_services
    from connectors.report.routes import backlog_router
    from sous.live import wire_live

    services, settings, db = container.services, container.settings, container.db
    services.add(db, Database)
    await wire_live(container, stack)  # live streams: this process's runs, and on PostgreSQL all
    services.add(Vault(db, Cipher(settings.secret_key.get_secret_value()), container.clock))
    services.add(ApprovalLinks(settings.secret_key.get_secret_value(), container.base_url))
    email_services(settings, services, db)
    http_services(settings, services, db)
    runtime = await wire_bigcommerce(container, stack)
    backorders = BackorderRuntime(
        container.engine,
        Backorders(db, StoresClientProvider(runtime.stores), container.clock),
    )
    # Reactions to order and stock events are written with the events themselves.
    runtime.normalizer.follow_ups = follow_ups
    backorders.install(listen=False)
    backorders.start()
    stack.push_async_callback(backorders.stop)
    container.routers.append(
        backlog_router(
            db=db,
            clients=StoresClientProvider(runtime.stores),
            clock=container.clock,
            workspace=current_key,
        )
    )
    container.routers.extend(pack_routers())


async def wire_bigcommerce(
    container: Container, stack: contextlib.AsyncExitStack
) -> BigCommerceRuntime:
    """Start the BigCommerce connector: it serves connected stores, its webhook router and
    the single-click app's callbacks (``/bigcommerce/*``)."""
    from api.bigcommerce_app import router as app_callbacks
    from connectors.bigcommerce.wiring import setup

    runtime = await setup(
        container.engine,
        container.settings.secret_key.get_secret_value(),
        stack,
        config=container.bigcommerce,
        public_base_url=container.base_url,
        transport=container.store_transport,
    )
    container.stores = runtime
    container.routers.append(runtime.router(container.settings.max_body_bytes))
    container.routers.append(app_callbacks)
    return runtime
