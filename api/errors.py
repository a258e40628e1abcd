"""One error body everywhere: ``{"error": {"code", "message", "details": [{"path", "message"}],
"request_id"}}``.

``details[].path`` is a JSON Pointer (RFC 6901) into the request body (``/actions/1/with/limit``);
for a query, path or header parameter it is the parameter's place and name (``query.limit``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine import (
    ConditionError,
    ConflictError,
    ErrorDetail,
    NotFoundError,
    RecipeError,
    RegistryError,
    RenderError,
)

log = logging.getLogger("sous.api")


class ErrorItem(BaseModel):
    path: str = Field(description="JSON Pointer into the body, or `query.<name>` for a parameter")
    message: str


class ErrorInfo(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str
    details: list[ErrorItem] = Field(default_factory=list)
    request_id: str | None = None


class ErrorBody(BaseModel):
    error: ErrorInfo


CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    428: "precondition_required",
    429: "usage_limit_reached",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
}


class BodyTooLarge(Exception):
    """The request body grew past the configured limit while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


class ApiError(Exception):
    """An error the API answers with on purpose."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Iterable[ErrorItem] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.details = list(details)
        self.headers = headers


def not_found(kind: str, key: object) -> ApiError:
    return ApiError(404, f"{kind} {key!r} not found")


def invalid(path: str, message: str) -> ApiError:
    return ApiError(422, message, details=[ErrorItem(path=path, message=message)])


def request_id_of(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    details: Sequence[ErrorItem] = (),
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    info = ErrorInfo(
        code=code or CODES.get(status, "error"),
        message=message,
        details=list(details),
        request_id=request_id,
    )
    body = ErrorBody(error=info).model_dump(mode="json")
    return JSONResponse(body, status_code=status, headers=headers)


def recipe_details(details: Iterable[ErrorDetail]) -> list[ErrorItem]:
    return [ErrorItem(path=d.pointer, message=d.message) for d in details]


def _pointer(parts: Sequence[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling)"
    msg = str(error.get("msg", "invalid value"))
    return msg[:1].lower() + msg[1:]


def validation_details(errors: Sequence[Any]) -> list[ErrorItem]:
    items = []
    for error in errors:
        where, *rest = tuple(error.get("loc", ())) or ("body",)
        path = _pointer(rest) if where == "body" else ".".join([str(where), *map(str, rest)])
        items.append(ErrorItem(path=path, message=_message(error)))
    return items


def _sous_status(exc: Exception) -> tuple[int, str, list[ErrorItem]]:
    if isinstance(exc, RecipeError):
        return 422, "invalid_recipe", recipe_details(exc.details)
    if isinstance(exc, ConditionError | RenderError | RegistryError):
        return 422, "validation_error", []
    if isinstance(exc, NotFoundError):
        return 404, "not_found", []
    return 409, "conflict", []


def install(app: FastAPI) -> None:
    """Register the handlers that turn every known error into the one error body."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(
            exc.status,
            exc.message,
            code=exc.code,
            details=exc.details,
            request_id=request_id_of(request),
            headers=exc.headers,
        )

    async def sous_error(request: Request, exc: Exception) -> JSONResponse:
        status, code, details = _sous_status(exc)
        if status == 409 and "if-match" in request.headers:
            status, code = 412, CODES[412]  # the precondition the client sent failed (RFC 9110)
        message = "the recipe is invalid" if isinstance(exc, RecipeError) else str(exc)
        return error_response(
            status, message, code=code, details=details, request_id=request_id_of(request)
        )

    async def request_invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = validation_details(exc.errors())
        return error_response(
            422, "the request is invalid", details=details, request_id=request_id_of(request)
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc.__cause__, BodyTooLarge):
            return error_response(413, str(exc.__cause__), request_id=request_id_of(request))
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            unreadable = ErrorItem(path="", message="the body is not UTF-8 JSON")
            return error_response(
                422,
                "the request is invalid",
                details=[unreadable],
                request_id=request_id_of(request),
            )
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such resource"
        return error_response(
            exc.status_code,
            message,
            request_id=request_id_of(request),
            headers=dict(exc.headers or {}) or None,
        )

    app.add_exception_handler(ApiError, api_error)
    for kind in (
        RecipeError,
        ConditionError,
        RenderError,
        RegistryError,
        NotFoundError,
        ConflictError,
    ):
        app.add_exception_handler(kind, sous_error)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)


DESCRIPTIONS = {
    401: "No API key, or an unknown or revoked one",
    403: "The API key lacks the scope this needs",
    404: "Not found in the caller's workspace",
    405: "The path does not take this method; `Allow` lists the ones it takes",
    409: "Conflict: a stale version, a duplicate, or a state that does not allow this",
    412: "`If-Match` names an older version: fetch the recipe again, reapply, and retry",
    413: "The request body is too large",
    415: "Send the body as one of the media types the operation lists (`Content-Type`)",
    422: "The request is invalid; `details` says where",
    428: "Send `If-Match` (or a `version`) to say which version the change is based on",
    429: "A daily usage limit of the workspace is reached: the message names it and what to do",
    502: "The store could not be reached",
    503: "Not ready",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, all with the one error body."""
    return {s: {"model": ErrorBody, "description": DESCRIPTIONS.get(s, "Error")} for s in statuses}
