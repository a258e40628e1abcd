"""``http.request``: call an outside HTTP API from a recipe, through the outbound guard.

Secrets go into headers through templates (``Authorization: "Bearer {{ secrets.ERP_TOKEN }}"``);
the runner masks them in the step's trace, and this module masks them in its own error messages
and drops them from requests redirected to another origin.

Failures: 429 and 5xx are retryable (``Retry(defer=...)`` when the server sends
``Retry-After``, in seconds or as an HTTP date), as are timeouts and connection failures; any
other status outside ``expect`` is permanent, with the status and the start of the body. For
methods that change things, an ``Idempotency-Key`` header carries the step's idempotency key, so
servers that support it can ignore a retried request they have already handled.
"""

from __future__ import annotations

import asyncio
import json
import re
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.http.guard import GuardedTransport, OutboundPolicy, OutboundRefused
from engine import (
    ActionContext,
    Params,
    PermanentError,
    Retry,
    RetryableError,
    count_usage,
    redact,
)

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
Scalar = str | int | float | bool
TEXT_LIMIT = 20_000
SNIPPET = 300
MAX_DEFER = 86_400.0
REDIRECTS = {301, 302, 303, 307, 308}
CHANGES = {"POST", "PUT", "PATCH", "DELETE"}
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_FORBIDDEN_HEADERS = {"content-length", "transfer-encoding", "connection"}
_CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "cookie"}


class RequestParams(Params):
    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)

    method: Method = "GET"
    url: str = Field(max_length=8000, description="http or https URL")
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    json_: Any = Field(default=None, alias="json", description="A JSON body")
    form: dict[str, Scalar | list[Scalar]] | None = Field(default=None, description="A form body")
    body: str | None = Field(default=None, description="A raw body (set Content-Type yourself)")
    timeout: float = Field(
        default=30.0, gt=0, le=300, description="seconds, for the whole exchange"
    )
    expect: list[int] | None = Field(
        default=None, description="Acceptable statuses; default: any 2xx"
    )
    max_response_bytes: int = Field(default=1_000_000, ge=1, le=50_000_000)
    follow_redirects: bool = True
    send_idempotency_key: bool = True

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers", mode="before")
    @classmethod
    def _header_values(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: str(v) if isinstance(v, int | float | bool) else v for k, v in value.items()}
        return value

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _TOKEN.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in _FORBIDDEN_HEADERS:
                raise ValueError(f"the {name} header is set by Sous, not by a recipe")
            if any(c in text for c in "\r\n\0"):
                raise ValueError(f"the {name} header contains a line break")
        return value

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("only absolute http:// and https:// URLs are allowed")
        return value

    @field_validator("expect")
    @classmethod
    def _statuses(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and not all(100 <= s <= 599 for s in value):
            raise ValueError("statuses are between 100 and 599")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> RequestParams:
        given = [
            n
            for n, v in (("json", self.json_), ("form", self.form), ("body", self.body))
            if v is not None
        ]
        if len(given) > 1:
            raise ValueError(
                f"json, form and body are mutually exclusive (got {' and '.join(given)})"
            )
        return self

    def acceptable(self, status: int) -> bool:
        return status in self.expect if self.expect is not None else 200 <= status < 300


class RequestOutput(BaseModel):
    model_config = ConfigDict(
        serialize_by_alias=True, validate_by_name=True, validate_by_alias=True
    )

    status: int
    url: str = Field(description="The URL that answered (after redirects)")
    headers: dict[str, str]
    json_: Any = Field(default=None, alias="json", description="The parsed body, when it is JSON")
    text: str = Field(description=f"The body as text, cut at {TEXT_LIMIT} characters")
    truncated: bool = False
    elapsed_ms: float
    redirects: int = 0


class HttpStatusError(PermanentError):
    def __init__(self, message: str, status: int) -> None:
        self.status = status
        super().__init__(message)


class HttpRetryableError(RetryableError):
    def __init__(self, message: str, status: int) -> None:
        self.status = status
        super().__init__(message)


class HttpRetryAfter(Retry):
    def __init__(self, defer: float, reason: str, status: int) -> None:
        self.status = status
        super().__init__(defer, reason)


class ResponseTooLarge(PermanentError):
    def __init__(self, url: str, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"the response from {url} is larger than max_response_bytes ({limit}); "
            "raise the limit or ask the API for less"
        )


async def http_request(ctx: ActionContext, params: RequestParams) -> RequestOutput:
    policy = ctx.services.find(OutboundPolicy) or OutboundPolicy()
    secrets = [s for s in ctx.secrets.values() if s]
    started = ctx.clock.monotonic()
    try:
        async with (
            asyncio.timeout(params.timeout),
            httpx.AsyncClient(
                transport=GuardedTransport(policy),
                timeout=params.timeout,
                follow_redirects=False,
                trust_env=False,
            ) as client,
        ):
            response, body, redirects = await _exchange(client, ctx, params, policy, secrets)
    except (TimeoutError, httpx.TimeoutException):
        message = f"{params.method} {params.url} timed out after {params.timeout:g}s"
        raise RetryableError(_mask(message, secrets)) from None
    except httpx.TransportError as exc:  # connection refused or reset, DNS failure, bad framing
        raise RetryableError(
            _mask(f"{params.method} {params.url} failed: {exc}", secrets)
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # an undecodable body, a bad Location
        raise PermanentError(
            _mask(f"{params.method} {params.url} failed: {exc}", secrets)
        ) from None
    elapsed = (ctx.clock.monotonic() - started) * 1000
    status = response.status_code
    if not params.acceptable(status):
        raise _status_error(ctx, response, body, secrets)
    text = "" if params.method == "HEAD" else _decode(response, body)
    return RequestOutput(
        status=status,
        url=str(response.url),
        headers={k: ", ".join(response.headers.get_list(k)) for k in response.headers},
        json=_json(response, body),
        text=text[:TEXT_LIMIT],
        truncated=len(text) > TEXT_LIMIT,
        elapsed_ms=round(elapsed, 3),
        redirects=redirects,
    )


async def _exchange(
    client: httpx.AsyncClient,
    ctx: ActionContext,
    params: RequestParams,
    policy: OutboundPolicy,
    secrets: list[str],
) -> tuple[httpx.Response, bytes, int]:
    """Send the request, following redirects one checked hop at a time; returns the final
    response, its body (read up to the size limit) and the number of redirects followed."""
    url = httpx.URL(params.url)
    if params.query:
        url = url.copy_merge_params(params.query)
    method: str = params.method
    headers = httpx.Headers(params.headers)
    if params.send_idempotency_key and method in CHANGES and "idempotency-key" not in headers:
        headers["Idempotency-Key"] = ctx.idempotency_key
    body: dict[str, Any] = {}
    if params.json_ is not None:
        body["json"] = params.json_
    elif params.form is not None:
        body["data"] = params.form
    elif params.body is not None:
        body["content"] = params.body.encode("utf-8")
    for hop in range(policy.max_redirects + 1):
        policy.check_url(url)
        request = client.build_request(method, url, headers=headers, **body)
        response = await _sent(client, request)
        try:
            if (
                params.follow_redirects
                and response.status_code in REDIRECTS
                and "location" in response.headers
            ):
                target = url.join(response.headers["location"])
                if response.status_code == 303 or (
                    response.status_code in (301, 302) and method == "POST"
                ):
                    method = "GET" if method != "HEAD" else method
                    body = {}
                    headers = _without(headers, ("content-type",))
                if _origin(target) != _origin(url):
                    headers = _without_credentials(headers, secrets)
                url = target
                continue
            shown = _mask(str(response.url), secrets)
            return response, await _read(response, params.max_response_bytes, shown), hop
        finally:
            await response.aclose()
    message = f"{params.url} redirected more than {policy.max_redirects} times"
    raise PermanentError(_mask(message, secrets))


async def _sent(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send one request through the guard; counted (``http_calls``) once it left this host,
    answered or not: a refused address or a failed connection sent nothing."""
    try:
        response = await client.send(request, stream=True)
    except (OutboundRefused, httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
        raise
    except httpx.TransportError:
        count_usage("http_calls")
        raise
    count_usage("http_calls")
    return response


async def _read(response: httpx.Response, limit: int, shown: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if response.request.method != "HEAD" and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(shown, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():  # decoded bytes: a compressed bomb counts in full
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(shown, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _status_error(
    ctx: ActionContext, response: httpx.Response, body: bytes, secrets: list[str]
) -> Exception:
    status = response.status_code
    snippet = " ".join(_decode(response, body)[:SNIPPET].split())
    what = _mask(f"{response.request.method} {response.url} answered {status}", secrets)
    detail = _mask(f": {snippet}" if snippet else "", secrets)
    if status == 429 or status >= 500:
        defer = retry_after(response.headers.get("retry-after"), ctx)
        if defer is not None:
            return HttpRetryAfter(defer, what, status)
        return HttpRetryableError(what + detail, status)
    return HttpStatusError(what + detail, status)


def retry_after(value: str | None, ctx: ActionContext) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds, or an HTTP date read against the
    engine clock), capped at a day; ``None`` when absent or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_DEFER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return min(max(0.0, (when - ctx.clock.now()).total_seconds()), MAX_DEFER)


def _decode(response: httpx.Response, body: bytes) -> str:
    try:
        return body.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def _json(response: httpx.Response, body: bytes) -> Any:
    kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not body or not (kind == "application/json" or kind.endswith("+json")):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _without(headers: httpx.Headers, names: tuple[str, ...]) -> httpx.Headers:
    return httpx.Headers([(k, v) for k, v in headers.multi_items() if k.lower() not in names])


def _without_credentials(headers: httpx.Headers, secrets: list[str]) -> httpx.Headers:
    """Headers for another origin: no credentials, and nothing that carries a vault secret."""
    return httpx.Headers(
        [
            (k, v)
            for k, v in headers.multi_items()
            if k.lower() not in _CREDENTIAL_HEADERS and not any(s in v for s in secrets)
        ]
    )


def _mask(text: str, secrets: list[str]) -> str:
    masked: str = redact(text, (), secrets)
    return masked
