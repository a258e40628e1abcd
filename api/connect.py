"""Connecting a BigCommerce store: check the base URL, verify the token by calling the store,
keep the token encrypted, and hand the store to the connector's webhook registration.

The store connector (:class:`engine.StoreConnector`, BigCommerce's when it is wired) registers
the new store's webhooks; what it returns is kept in the store's ``info["webhooks"]``.

Registration is a few dozen calls to the store, paced by the store's API quota: when other
clients (or Sous's own reads) have used the quota up, the calls wait for the quota's window to
reset (30 s on BigCommerce). The connect answer does not wait for that: after
:data:`REGISTER_WAIT` seconds it answers with status ``webhooks_pending`` while registration
goes on in the background, and the row is updated (status ``connected`` or
``webhooks_failed``) when it ends, unless the store was disconnected meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from api.deps import SandboxLike
from api.errors import ApiError, ErrorItem
from connectors.bigcommerce.client import DEFAULT_BASE_URL, BigCommerceClient, RetryPolicy
from connectors.bigcommerce.errors import BigCommerceError, Unauthorized
from engine import Clock, StoreConnector, StoreRow
from sous.settings import Settings

log = logging.getLogger("sous.api")
_NO_RETRIES = RetryPolicy(read_delays=(), write_delays=(), network_delays=(), max_rate_limited=0)
_BIGCOMMERCE_HOST = "api.bigcommerce.com"
REGISTER_WAIT = 5.0
"""Seconds ``POST /v1/stores`` waits for webhook registration before answering
``webhooks_pending``."""
PENDING = "webhooks_pending"
_LATE: set[asyncio.Task[None]] = set()  # registrations still running after their answer


def base_url_for(
    store_hash: str, given: str | None, settings: Settings, sandbox: SandboxLike | None
) -> str:
    """The API base URL to use; refuses hosts the server may not call (no open proxy)."""
    default = sandbox.store_base_url if sandbox else DEFAULT_BASE_URL
    url = (given or default).replace("{store_hash}", store_hash).rstrip("/")
    parts = urlsplit(url)
    allowed = {_BIGCOMMERCE_HOST, *settings.outbound_allow_hosts}
    sandboxed = sandbox is not None and url.startswith(_prefix(sandbox.store_base_url))
    if not sandboxed and (parts.scheme != "https" or parts.hostname not in allowed):
        raise ApiError(
            422,
            "the API base URL must be https on api.bigcommerce.com (or an allowed host)",
            details=[
                ErrorItem(path="/api_base_url", message=f"{url!r} is not an allowed store API")
            ],
        )
    return url


def _prefix(template: str) -> str:
    return template.split("{store_hash}", 1)[0].rstrip("/")


async def verify(
    store_hash: str, token: str, base_url: str, clock: Clock, sandbox: SandboxLike | None
) -> dict[str, Any]:
    """Call ``GET {base}/v2/store``; return the store's information or explain the failure."""
    client = BigCommerceClient(
        store_hash,
        token,
        base_url=base_url,
        clock=clock,
        transport=sandbox.transport if sandbox else None,
        timeout=10.0,
        retry=_NO_RETRIES,
    )
    try:
        async with client:
            info = await client.store_info()
    except Unauthorized as exc:
        detail = ErrorItem(path="/access_token", message="the store refused this access token")
        raise ApiError(422, str(exc), code="store_rejected", details=[detail]) from None
    except BigCommerceError as exc:
        if exc.status is not None and exc.status < 500 and exc.status != 429:
            raise ApiError(422, str(exc), code="store_rejected") from None
        raise ApiError(502, f"the store could not be reached: {exc}") from None
    return info if isinstance(info, dict) else {}


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


async def register_webhooks(
    stores: StoreConnector | None,
    row: StoreRow,
    token: str,
    secret: str,
    save_late: Callable[[str, str, dict[str, Any]], Awaitable[None]] | None = None,
    wait: float | None = None,
) -> bool:
    """Hand a new store to the store connector, if one is wired, and note the outcome in the
    row (``info["webhooks"]``; status ``webhooks_failed`` if it raised). True if it ran.

    If registration has not ended after ``wait`` seconds (:data:`REGISTER_WAIT`), the row says
    ``webhooks_pending`` and registration goes on; when it ends, ``save_late`` is given the
    store's id, status and info with the outcome."""
    if stores is None:
        return False
    registering = asyncio.ensure_future(
        stores.register(
            workspace=row.workspace_id,
            store_id=row.id,
            store_hash=row.store_hash,
            api_base_url=row.api_base_url,
            access_token=token,
            webhook_secret=secret,
        )
    )
    done, _ = await asyncio.wait({registering}, timeout=REGISTER_WAIT if wait is None else wait)
    if done:
        _note(row, row.store_hash, registering)
        return True
    log.warning(
        "store %s: webhook registration goes on after the answer (the store's quota paces it)",
        row.store_hash,
    )
    status, info = row.status, dict(row.info or {})
    row.status = PENDING
    row.info = {**info, "webhooks": {"pending": True}}

    async def finish() -> None:
        await asyncio.wait({registering})
        late = _Outcome(status, info)
        _note(late, row.store_hash, registering)
        if save_late is not None:
            await save_late(row.id, late.status, late.info or {})

    task = asyncio.create_task(finish())
    _LATE.add(task)
    task.add_done_callback(_LATE.discard)
    return True


@dataclass
class _Outcome:
    status: str
    info: dict[str, Any] | None


def _note(row: StoreRow | _Outcome, store_hash: str, registering: asyncio.Future[Any]) -> None:
    exc = registering.exception()
    if exc is None:
        hooks: Any = registering.result()
    else:
        log.warning("registering webhooks for store %s failed: %r", store_hash, exc)
        row.status, hooks = "webhooks_failed", {"error": f"{type(exc).__name__}: {exc}"}
    row.info = {**(row.info or {}), "webhooks": hooks}


async def finish_soon(work: Awaitable[None], wait: float | None = None) -> None:
    """Wait up to ``wait`` seconds (:data:`REGISTER_WAIT`) for ``work``; past that it goes on
    in the background (its failure is logged)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=REGISTER_WAIT if wait is None else wait)
    if done:
        task.result()
        return

    def logged(ended: asyncio.Future[None]) -> None:
        _LATE.discard(ended)
        if not ended.cancelled() and ended.exception() is not None:
            log.error("background store work failed", exc_info=ended.exception())

    _LATE.add(task)
    task.add_done_callback(logged)
