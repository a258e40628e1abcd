"""Wire formats shared by the routes: dates, money, query filters, pagination and error bodies.

v3 speaks ISO-8601 dates, numbers for money, ``{"data": ..., "meta": ...}`` envelopes and
``{"status", "title", "type", "errors"}`` errors. v2 speaks RFC-2822 dates, money as strings with
four decimals, bare arrays and ``[{"status", "message"}]`` errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Literal, TypeVar

from starlette.datastructures import QueryParams

ERROR_TYPE = "/api-docs/getting-started/api-status-codes"
Version = Literal["v2", "v3"]
T = TypeVar("T")


class ApiError(Exception):
    """An error answered in the calling API version's format (see :func:`error_body`)."""

    def __init__(
        self,
        status: int,
        title: str,
        errors: dict[str, Any] | None = None,
        *,
        details: dict[str, Any] | None = None,
        media_type: str = "application/json",
    ) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.errors = errors
        self.details = details
        self.media_type = media_type


def error_body(version: Version, err: ApiError) -> Any:
    if version == "v2":
        item: dict[str, Any] = {"status": err.status, "message": err.title}
        if err.details is not None:
            item["details"] = err.details
        return [item]
    body: dict[str, Any] = {"status": err.status, "title": err.title, "type": ERROR_TYPE}
    if err.errors is not None:
        body["errors"] = err.errors
    return body


def not_found(what: str = "The requested resource was not found.") -> ApiError:
    return ApiError(404, what)


def invalid(errors: dict[str, Any], title: str = "JSON data is missing or invalid") -> ApiError:
    return ApiError(422, title, errors)


# -- dates -----------------------------------------------------------------------------------


def iso(dt: datetime | None) -> str | None:
    """v3 date-time: ``2018-08-15T14:48:46+00:00``."""
    if dt is None:
        return None
    return dt.astimezone(UTC).replace(microsecond=0).isoformat()


def rfc2822(dt: datetime | None) -> str:
    """v2 date: ``Wed, 10 Jan 2018 21:05:30 +0000`` (empty string when unset, as v2 does)."""
    if dt is None:
        return ""
    return format_datetime(dt.astimezone(UTC).replace(microsecond=0))


def parse_when(value: str) -> datetime:
    """Parse a filter date: ISO-8601 (date or date-time), RFC-2822, or Unix seconds."""
    text = value.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, f"Invalid date: {value!r}") from exc
    if isinstance(parsed, date) and not isinstance(parsed, datetime):  # pragma: no cover
        parsed = datetime(parsed.year, parsed.month, parsed.day)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- money -----------------------------------------------------------------------------------


def money(value: Decimal | float | int) -> str:
    """v2 money: a string with four decimals."""
    return f"{Decimal(str(value)).quantize(Decimal('0.0001')):.4f}"


# -- query strings ---------------------------------------------------------------------------


def q_int(params: QueryParams, name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(float(raw))
    except ValueError as exc:
        raise ApiError(400, f"The filter {name} must be a number") from exc


def q_float(params: QueryParams, name: str) -> float | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise ApiError(400, f"The filter {name} must be a number") from exc


def q_list(params: QueryParams, name: str) -> list[str] | None:
    """``name=a,b`` or ``name=a&name=b`` → ``["a", "b"]``."""
    values = params.getlist(name)
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def q_int_list(params: QueryParams, name: str) -> list[int] | None:
    items = q_list(params, name)
    if items is None:
        return None
    try:
        return [int(item) for item in items]
    except ValueError as exc:
        raise ApiError(400, f"The filter {name} must be a list of numbers") from exc


def q_bool(params: QueryParams, name: str) -> bool | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    return raw.lower() in ("1", "true", "yes")


def range_ok(value: float, params: QueryParams, name: str) -> bool:
    """Apply ``name``, ``name:min``, ``:max``, ``:greater``, ``:less``, ``:in``, ``:not_in``."""
    exact = q_float(params, name)
    if exact is not None and value != exact:
        return False
    low, high = q_float(params, f"{name}:min"), q_float(params, f"{name}:max")
    above, below = q_float(params, f"{name}:greater"), q_float(params, f"{name}:less")
    if (low is not None and value < low) or (high is not None and value > high):
        return False
    if (above is not None and value <= above) or (below is not None and value >= below):
        return False
    within, outside = q_int_list(params, f"{name}:in"), q_int_list(params, f"{name}:not_in")
    if within is not None and value not in within:
        return False
    return not (outside is not None and value in outside)


def dates_ok(value: datetime, params: QueryParams, name: str) -> bool:
    """Apply ``name:min`` and ``name:max`` date filters."""
    low, high = params.get(f"{name}:min"), params.get(f"{name}:max")
    if low and value < parse_when(low):
        return False
    return not (high and value > parse_when(high))


# -- pagination ------------------------------------------------------------------------------


def page_args(
    params: QueryParams, *, default_limit: int = 50, max_limit: int | None = 250
) -> tuple[int, int]:
    """``(page, limit)`` from the query; 413 when ``limit`` is above ``max_limit``."""
    page = q_int(params, "page") or 1
    limit = q_int(params, "limit") or default_limit
    if page < 1 or limit < 1:
        raise ApiError(400, "page and limit must be positive")
    if max_limit is not None and limit > max_limit:
        raise ApiError(
            413, f"The request payload is too large. The maximum limit is {max_limit}.", {}
        )
    return page, limit


def paginate_v3(items: Sequence[T], page: int, limit: int) -> tuple[list[T], dict[str, Any]]:
    """One page of ``items`` and its ``meta`` (``meta.pagination`` as the specs describe)."""
    total = len(items)
    chunk = list(items[(page - 1) * limit : page * limit])
    total_pages = max(1, math.ceil(total / limit)) if total else 0
    links: dict[str, str] = {"current": f"?page={page}&limit={limit}"}
    if page > 1:
        links["previous"] = f"?page={page - 1}&limit={limit}"
    if page < total_pages:
        links["next"] = f"?page={page + 1}&limit={limit}"
    pagination = {
        "total": total,
        "count": len(chunk),
        "per_page": limit,
        "current_page": page,
        "total_pages": total_pages,
        "links": links,
    }
    return chunk, {"pagination": pagination}


def paginate_v2(items: Sequence[T], page: int, limit: int) -> list[T]:
    return list(items[(page - 1) * limit : page * limit])
