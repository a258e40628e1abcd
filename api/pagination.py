"""Cursor pagination: ``?limit=&cursor=``; a page is ``{data, next_cursor}``.

Lists are ordered by a unique key (ids are time-ordered, so newest first is ``id`` descending);
the cursor is the key of the last item returned. Clients treat it as opaque.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

from fastapi import Query

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=200, description="Items per page")]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="The `next_cursor` of the previous page"),
]


def page(rows: Sequence[T], limit: int, key: Callable[[T], str]) -> tuple[list[T], str | None]:
    """Split ``limit + 1`` fetched rows into this page and the cursor of the next one."""
    data = list(rows[:limit])
    more = len(rows) > limit
    return data, (key(data[-1]) if more and data else None)
