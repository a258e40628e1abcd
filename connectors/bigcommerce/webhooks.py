"""``POST /v1/webhooks/bigcommerce/{store}``: BigCommerce deliveries in.

``{store}`` is the store's id in Sous (``sto_...``), not its hash: ids are unique across
workspaces and are what the registered destination carries. A delivery is

1. matched to a connected store (404 otherwise),
2. authenticated by the custom header registered with the hook, compared in constant time
   (401 if missing or wrong; the secret is never logged),
3. parsed (400 if not JSON) and validated as the published envelope (422 with the reason),
4. written to the inbox as a ``bigcommerce.webhook`` event together with its normalisation job,
   and only then acknowledged with 200. A delivery seen before is acknowledged and dropped.

No BigCommerce call is made here. The envelope cannot tell a retry from a second event: its
``hash`` is the SHA-1 of ``data`` alone and ``created_at`` has one-second resolution, so two sales
of one unit in the same second send identical bodies. A delivery is therefore recognised as seen
before only by its Standard Webhooks ``webhook-id`` header, which names the event and repeats on
every retry of it (qualified by the store, scope, ``created_at`` and ``hash``, which a retry
repeats too). A delivery without that header is always stored: a retry of it costs one product
read, and the normaliser's state-derived dedup keys turn it into no new event, while dropping it
could lose a real change.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from connectors.bigcommerce.normalize import NORMALIZE
from connectors.bigcommerce.stores import SECRET_HEADER, WEBHOOK_PATH, BigCommerceStores
from engine import NewEvent, transient

log = logging.getLogger("sous.bigcommerce.webhooks")

Ingest = Callable[[NewEvent, Sequence[str]], Awaitable[Any]]


def _text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Envelope(BaseModel):
    """The callback envelope (webhooks.md §1). Unknown extra keys are kept."""

    model_config = ConfigDict(extra="allow")

    scope: str = Field(min_length=3, max_length=200, pattern=r"^store/")
    store_id: Annotated[str, BeforeValidator(_text)] = Field(max_length=40)
    data: dict[str, Any] | list[Any]
    hash: str = Field(min_length=1, max_length=128)
    created_at: int = Field(ge=0, lt=2**40, strict=True)
    producer: str = Field(min_length=1, max_length=200)


MESSAGE_ID_HEADER = "webhook-id"
STORE_TRIES = 3
"""Attempts to store one delivery before answering 503."""


def raw_dedup_key(store_id: str, envelope: Envelope, message_id: str) -> str | None:
    """The inbox key of one delivery: retries of one event share it, two events never do.
    ``None`` (no dedup) when the delivery carries no ``webhook-id``."""
    if not message_id:
        return None
    parts = (store_id, message_id, envelope.scope, str(envelope.created_at), envelope.hash)
    return "bcw:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:48]


class WebhookStats:
    """Counts by outcome and the recent acknowledgement latencies (for metrics)."""

    def __init__(self, keep: int = 2048) -> None:
        self.outcomes: dict[str, int] = {}
        self.per_store: dict[str, int] = {}
        self.latencies: deque[float] = deque(maxlen=keep)

    def count(self, outcome: str, store_hash: str | None = None) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if store_hash is not None:
            self.per_store[store_hash] = self.per_store.get(store_hash, 0) + 1


def _problem(
    status: int, code: str, message: str, details: list[dict[str, str]] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return JSONResponse(body, status)


def _reason(exc: ValidationError) -> tuple[str, list[dict[str, str]]]:
    details = []
    for err in exc.errors()[:10]:
        parts = [p for p in err["loc"] if not (isinstance(p, str) and "[" in p)]  # union tags
        pointer = "".join(f"/{part}" for part in parts)
        details.append({"path": pointer or "/", "message": str(err["msg"])})
    first = details[0] if details else {"path": "/", "message": "invalid"}
    return f"not a BigCommerce webhook envelope: {first['path']}: {first['message']}", details


async def _store(ingest: Ingest, new: NewEvent) -> Any:
    """Ingest the delivery; again at once after a fault that passes (a lost connection, a
    deadlock or serialisation conflict with another process): BigCommerce would only deliver
    it again a minute later, and deactivates a hook that keeps failing. Trying again is safe:
    the delivery's key makes a stored one a duplicate."""
    for attempt in range(STORE_TRIES):
        try:
            return await ingest(new, [NORMALIZE])
        except Exception as exc:
            if attempt == STORE_TRIES - 1 or not transient(exc):
                raise
            log.warning("storing a webhook failed (%s); trying again", type(exc).__name__)
            await asyncio.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def build_router(
    stores: BigCommerceStores, ingest: Ingest, stats: WebhookStats, *, max_body: int = 1_000_000
) -> APIRouter:
    router = APIRouter(tags=["webhooks"])

    @router.post(
        WEBHOOK_PATH,
        summary="Receive a BigCommerce webhook",
        responses={400: {}, 401: {}, 404: {}, 413: {}, 422: {}, 503: {}},
    )
    async def receive(store: str, request: Request) -> JSONResponse:
        started = time.perf_counter()
        found = stores.auth(store)
        if found is None:
            log.warning("webhook for unknown store %r refused", store[:64])
            stats.count("unknown_store")
            return _problem(404, "not_found", "no connected store has this id")
        store_id, workspace, store_hash, secret = found
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning(
                "webhook for store %s refused: missing or wrong %s header",
                store_hash,
                SECRET_HEADER,
            )
            stats.count("unauthorized", store_hash)
            return _problem(401, "unauthorized", f"missing or wrong {SECRET_HEADER} header")
        body = await request.body()
        if len(body) > max_body:
            stats.count("too_large", store_hash)
            return _problem(413, "payload_too_large", f"the body is larger than {max_body} bytes")
        try:
            document = json.loads(body)
        except ValueError:
            log.warning("webhook for store %s refused: the body is not JSON", store_hash)
            stats.count("malformed", store_hash)
            return _problem(400, "bad_request", "the body is not JSON")
        try:
            envelope = Envelope.model_validate(document)
        except ValidationError as exc:
            message, details = _reason(exc)
            log.warning("webhook for store %s refused: %s", store_hash, message)
            stats.count("malformed", store_hash)
            return _problem(422, "validation_error", message, details)
        if envelope.producer != f"stores/{store_hash}":
            log.info("webhook for store %s names producer %r", store_hash, envelope.producer[:80])
        new = NewEvent(
            type="bigcommerce.webhook",
            payload=envelope.model_dump(mode="json"),
            workspace=workspace,
            store=store_hash,
            source="webhook",
            dedup_key=raw_dedup_key(
                store_id, envelope, request.headers.get(MESSAGE_ID_HEADER, "")[:200]
            ),
            occurred_at=datetime.fromtimestamp(envelope.created_at, UTC),
        )
        try:
            result = await _store(ingest, new)
        except Exception:  # not stored: BigCommerce will deliver it again (a minute later)
            log.exception("webhook for store %s could not be stored", store_hash)
            stats.count("failed", store_hash)
            return _problem(503, "unavailable", "the webhook could not be stored; retry later")
        duplicate = bool(getattr(result, "duplicate", False))
        stats.count("duplicate" if duplicate else "accepted", store_hash)
        stores.last_webhook_at[store_id] = stores.clock.now()
        stats.latencies.append((time.perf_counter() - started) * 1000)
        if duplicate:
            log.debug("webhook %s for store %s seen before; dropped", envelope.hash, store_hash)
        return JSONResponse({"status": "duplicate" if duplicate else "accepted"})

    return router
