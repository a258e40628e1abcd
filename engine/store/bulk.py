"""Buffered writes for the hot path: rows gathered from a whole group-commit batch and sent as
one ``executemany`` per statement shape, with SQL compiled once per dialect.

SQLAlchemy's per-statement overhead dominates small writes; a batch of 500 ingests becomes a
handful of statements this way. Buffered operations run at the end of the batch, in the order
their shapes first appeared, after any statement the batch executed directly — so use them for
rows no other statement of the same batch reads or changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine.interfaces import Dialect

Processor = Callable[[Any], Any] | None
_COMPILED: dict[tuple[Any, ...], tuple[str, list[str] | None, dict[str, Processor]]] = {}


def _compile(
    dialect: Dialect, key: tuple[Any, ...], stmt: Any, types: dict[str, Any]
) -> tuple[str, list[str] | None, dict[str, Processor]]:
    found = _COMPILED.get(key)
    if found is None:
        compiled = stmt.compile(dialect=dialect)
        order = list(compiled.positiontup) if compiled.positional else None
        processors = {
            name: type_.dialect_impl(dialect).bind_processor(dialect)
            for name, type_ in types.items()
        }
        found = (str(compiled), order, processors)
        _COMPILED[key] = found
    return found


class Ops:
    """Statements waiting for the end of a batch, grouped by shape."""

    def __init__(self) -> None:
        self._groups: dict[
            tuple[Any, ...], tuple[Callable[[Dialect], Any], dict[str, Any], list[dict[str, Any]]]
        ] = {}

    def _add(
        self,
        key: tuple[Any, ...],
        build: Callable[[Dialect], Any],
        types: dict[str, Any],
        params: dict[str, Any],
    ) -> None:
        group = self._groups.get(key)
        if group is None:
            self._groups[key] = (build, types, [params])
        else:
            group[2].append(params)

    def insert(self, table: Table, rows: Iterable[dict[str, Any]], upsert: bool = False) -> None:
        for row in rows:
            cols = tuple(row)
            key = ("insert", table.name, cols, upsert)
            if key in self._groups:
                self._groups[key][2].append(row)
                continue
            types = {c: table.c[c].type for c in cols}

            def build(dialect: Dialect, cols: tuple[str, ...] = cols) -> Any:
                values: dict[str, Any] = {c: bindparam(c) for c in cols}
                if not upsert:
                    return insert(table).values(values)
                maker = sqlite_insert if dialect.name == "sqlite" else pg_insert
                stmt = maker(table).values(values)
                keys = [c.name for c in table.primary_key.columns]
                return stmt.on_conflict_do_update(
                    index_elements=keys, set_={c: stmt.excluded[c] for c in cols if c not in keys}
                )

            self._add(key, build, types, row)

    def update(self, table: Table, where: dict[str, Any], values: dict[str, Any]) -> None:
        wcols, vcols = tuple(where), tuple(values)
        types = {f"w_{c}": table.c[c].type for c in wcols} | {
            f"v_{c}": table.c[c].type for c in vcols
        }

        def build(dialect: Dialect) -> Any:
            stmt = update(table).values({c: bindparam(f"v_{c}") for c in vcols})
            for c in wcols:
                stmt = stmt.where(table.c[c] == bindparam(f"w_{c}"))
            return stmt

        params = {f"w_{c}": v for c, v in where.items()} | {f"v_{c}": v for c, v in values.items()}
        self._add(("update", table.name, wcols, vcols), build, types, params)

    def delete(self, table: Table, where: dict[str, Any]) -> None:
        wcols = tuple(where)
        types = {f"w_{c}": table.c[c].type for c in wcols}

        def build(dialect: Dialect) -> Any:
            stmt = delete(table)
            for c in wcols:
                stmt = stmt.where(table.c[c] == bindparam(f"w_{c}"))
            return stmt

        self._add(
            ("delete", table.name, wcols), build, types, {f"w_{c}": v for c, v in where.items()}
        )

    def flush(self, conn: Connection) -> None:
        dialect = conn.dialect
        raw = conn.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            for key, (build, types, rows) in self._groups.items():
                sql, order, processors = _compile(
                    dialect, (dialect.name, *key), build(dialect), types
                )
                if order is not None:
                    params: list[Any] = [
                        tuple(_apply(processors[n], row[n]) for n in order) for row in rows
                    ]
                else:
                    params = [{n: _apply(processors[n], v) for n, v in row.items()} for row in rows]
                cursor.executemany(sql, params)
        finally:
            cursor.close()
        self._groups.clear()


def _apply(processor: Processor, value: Any) -> Any:
    return processor(value) if processor is not None and value is not None else value


def insert_ignoring_conflicts(conn: Connection, table: Table, row: dict[str, Any]) -> bool:
    """Insert one row now unless it conflicts with a unique key; True if it was inserted."""
    dialect = conn.dialect
    cols = tuple(row)
    key = (dialect.name, "insert-ignore", table.name, cols)
    found = _COMPILED.get(key)
    if found is None:
        maker = sqlite_insert if dialect.name == "sqlite" else pg_insert
        stmt = maker(table).values({c: bindparam(c) for c in cols}).on_conflict_do_nothing()
        found = _compile(dialect, key, stmt, {c: table.c[c].type for c in cols})
    sql, order, processors = found
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        if order is not None:
            cursor.execute(sql, tuple(_apply(processors[n], row[n]) for n in order))
        else:
            cursor.execute(sql, {n: _apply(processors[n], v) for n, v in row.items()})
        return bool(cursor.rowcount)
    finally:
        cursor.close()
