"""Typed errors for BigCommerce REST responses.

::

    ActionError
    └── BigCommerceError                 status, title, errors, method, path
        ├── RequestRejected (Permanent)  any other 4xx, 501, 505
        │   ├── BadRequest               400, 413 (limit or batch too large)
        │   ├── Unauthorized             401, 403
        │   ├── NotFound                 404
        │   ├── Conflict                 409
        │   ├── ValidationFailed         422
        │   └── PlanLimitReached         507
        ├── RateLimited (Retry)          429 after the client's own retries ran out
        ├── ServerError (Retryable)      500, 502, 503, 504 after retries ran out; 423 Locked
        └── TransportFailed (Retryable)  no response: connection error or timeout

Error bodies come in two shapes [conventions.md §5]: v3 ``GeneralErrorWithErrors``
(``{"status", "title", "type", "errors": {field: message}}``) and v2 arrays
(``[{"status", "message"}]``). Both are parsed into ``title`` and ``errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from engine import ActionError, PermanentError, Retry, RetryableError

# OAuth scopes needed per API, by the first path segment [conventions.md §1].
_SCOPES: dict[str, str] = {
    "catalog": "store_v2_products",
    "inventory": "store_inventory",
    "orders": "store_v2_orders",
    "order_statuses": "store_v2_orders",
    "customers": "store_v2_customers",
    "customer_groups": "store_v2_customers",
    "store": "store_v2_information",
    "settings": "store_v2_information",
}


class BigCommerceError(ActionError):
    """A BigCommerce request failed. ``status`` is ``None`` when no response arrived."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        title: str = "",
        errors: Mapping[str, Any] | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.title = title
        self.errors: dict[str, Any] = dict(errors or {})
        self.method = method
        self.path = path
        where = f"{method} {path}".strip()
        text = f"BigCommerce {where}: {message}" if where else f"BigCommerce: {message}"
        # Call Exception.__init__ directly: RateLimited also inherits Retry, whose
        # __init__ takes different arguments.
        Exception.__init__(self, text)


class RequestRejected(BigCommerceError, PermanentError):
    """BigCommerce refused the request; sending it again unchanged would not help."""


class BadRequest(RequestRejected):
    """400 (malformed) or 413 (too many objects, or ``limit`` too high)."""


class Unauthorized(RequestRejected):
    """401 (bad or missing token) or 403 (missing OAuth scope, or a platform limit)."""


class NotFound(RequestRejected):
    """404: the resource does not exist on this store."""


class Conflict(RequestRejected):
    """409: the change conflicts with the store's current state."""


class ValidationFailed(RequestRejected):
    """422: missing or invalid data; ``errors`` maps field names to messages."""


class PlanLimitReached(RequestRejected):
    """507: the store's plan limit is reached (for example its product count)."""


class RateLimited(BigCommerceError, Retry):
    """429 kept coming back; ``defer`` is the suggested wait in seconds before trying again."""

    def __init__(self, message: str, *, defer: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.defer = defer
        self.reason = message


class ServerError(BigCommerceError, RetryableError):
    """5xx (or 423 Locked) that did not clear within the client's retries."""


class TransportFailed(BigCommerceError, RetryableError):
    """No response: the connection failed or timed out."""


def parse_error_body(body: Any) -> tuple[str, dict[str, Any]]:
    """Return ``(title, errors)`` from a v3 or v2 error body; unknown shapes give ``("", {})``."""
    if isinstance(body, Mapping):
        title = str(body.get("title") or body.get("message") or "")
        raw = body.get("errors")
        errors = dict(raw) if isinstance(raw, Mapping) else {}
        if isinstance(raw, list) and raw:
            errors = {str(i): item for i, item in enumerate(raw)}
        return title, errors
    if isinstance(body, list):
        messages = [
            str(item.get("message", ""))
            for item in body
            if isinstance(item, Mapping) and item.get("message")
        ]
        errors = {str(i): item for i, item in enumerate(body)}
        return "; ".join(messages), errors
    return "", {}


def _scope_hint(path: str) -> str:
    parts = [p for p in path.split("?", 1)[0].split("/") if p and p not in ("v2", "v3")]
    segment = parts[0] if parts else ""
    scope = _SCOPES.get(segment)
    return f" (this API needs the {scope!r} scope or its read-only variant)" if scope else ""


def error_for_status(
    status: int, body: Any, *, method: str, path: str, retry_after: float | None = None
) -> BigCommerceError:
    """Build the typed error for an HTTP error ``status`` and its decoded ``body``."""
    title, errors = parse_error_body(body)
    detail = f": {title}" if title else ""
    common: dict[str, Any] = {
        "status": status,
        "title": title,
        "errors": errors,
        "method": method,
        "path": path,
    }
    if status == 401:
        msg = f"401 Unauthorized{detail}; check the store's access token and its OAuth scopes"
        return Unauthorized(msg, **common)
    if status == 403:
        msg = (
            f"403 Forbidden{detail}; the access token lacks an OAuth scope"
            f"{_scope_hint(path)}, or a platform limit was hit"
        )
        return Unauthorized(msg, **common)
    if status == 404:
        return NotFound(f"404 Not Found{detail}", **common)
    if status == 409:
        return Conflict(f"409 Conflict{detail}", **common)
    if status == 422:
        fields = ", ".join(f"{k}: {v}" for k, v in errors.items() if isinstance(v, str))
        extra = f" ({fields})" if fields else ""
        return ValidationFailed(f"422 Unprocessable{detail}{extra}; fix the data sent", **common)
    if status == 413:
        msg = f"413 Too Large{detail}; send fewer objects per request or a lower limit"
        return BadRequest(msg, **common)
    if status == 400:
        return BadRequest(f"400 Bad Request{detail}", **common)
    if status == 429:
        wait = retry_after if retry_after is not None else 30.0
        msg = f"429 Too Many Requests{detail}; the store's API quota is exhausted"
        return RateLimited(msg, defer=wait, **common)
    if status == 507:
        msg = f"507 Insufficient Storage{detail}; the store's plan limit is reached"
        return PlanLimitReached(msg, **common)
    if status == 423 or (status >= 500 and status not in (501, 505)):
        hint = "; the store may be in maintenance or suspended" if status == 503 else ""
        return ServerError(f"{status} server error{detail}{hint}", **common)
    return RequestRejected(f"{status}{detail}", **common)


def error_for_response(response: httpx.Response, *, method: str, path: str) -> BigCommerceError:
    """The typed error for an error ``response``; a 429's ``defer`` comes from its headers."""
    retry_after: float | None = None
    reset_ms = response.headers.get("x-rate-limit-time-reset-ms")
    after = response.headers.get("x-retry-after")
    try:
        if reset_ms is not None:
            retry_after = float(reset_ms) / 1000
        elif after is not None:
            retry_after = float(after)
    except ValueError:
        retry_after = None
    try:
        body: Any = response.json() if response.content else None
    except ValueError:
        body = {"title": response.text[:200]}
    return error_for_status(
        response.status_code, body, method=method, path=path, retry_after=retry_after
    )
