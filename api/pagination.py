"""Cursor pagination: ``?limit=&cursor=``; a page is ``{data, next_cursor}``.

Lists are ordered by a unique key (ids are time-ordered, so newest first is ``id`` descending);
the cursor is the key of the last item returned. Clients treat it as opaque.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlmodel import Session, col

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


def newest_first(
    session: Session,
    query: Any,
    id_column: Any,
    limit: int,
    cursor: str | None,
    key: Callable[[Any], str] = lambda row: str(row.id),
) -> tuple[list[Any], str | None]:
    """One page of ``query``, newest first by ``id_column``, after ``cursor``."""
    column = col(id_column)
    if cursor:
        query = query.where(column < cursor)
    rows = session.exec(query.order_by(column.desc()).limit(limit + 1)).all()
    return page(rows, limit, key)


class _Unindexed(ColumnElement[Any]):
    """``column`` as itself, written ``+column`` on SQLite (see :func:`unindexed`)."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: Any) -> None:
        self.column = column
        self.type = column.type


@compiles(_Unindexed)
def _plain(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(_Unindexed, "sqlite")
def _plus(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.column, **kw))


def unindexed(column: Any) -> Any:
    """``column``, for a filter that should not choose the index SQLite reads by: it would
    rather search an index on a filtered time and sort every row in the range than step down a
    list's own index (whose trailing columns check the time without reading the row), or read a
    workspace's every recipe by its index to find a page's few by their uids. The results are
    the same; PostgreSQL, which weighs the indexes with statistics, sees the plain column."""
    return _Unindexed(col(column))
