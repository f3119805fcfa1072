"""Bulk INSERTs for the pipeline's hot path, the fastest way each database offers.

A batch's rows cost more in SQLAlchemy's per-row parameter handling (~30 us a row)
than in the database, and on PostgreSQL a multi-row ``INSERT ... RETURNING`` is a new
statement text each time, which psycopg rewrites (~8 ms for 200 messages) and the
server plans afresh. So each column's own bind processor turns the values into driver
values once, and then:
- PostgreSQL: the ids come from the table's sequence in one query and the rows go
  in by binary ``COPY``;
- SQLite: the driver's ``executemany``, or one ``execute`` per row where the ids are
  needed (``lastrowid``; SQLite runs it in C, there is no round trip).
The values get the conversions and column defaults SQLAlchemy itself would apply, so
a row reads back the same whichever way it was written. Everything runs inside the
caller's transaction.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, ColumnDefault, Connection, Dialect, Table, insert, text
from sqlalchemy.exc import DBAPIError

Row = Mapping[str, Any]
_LENGTH = re.compile(r"\(.*\)")
_Processor = Callable[[Any], Any] | None


class BulkInsert:
    """INSERTs of many rows into one table; rows of one call share their keys."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._prepared: dict[tuple[str, tuple[str, ...]], _Statement] = {}

    def rows(self, connection: Connection, rows: Sequence[Row]) -> None:
        """Insert ``rows``."""
        if rows:
            self._statement(connection, rows[0]).insert(connection, rows)

    def rows_with_ids(self, connection: Connection, rows: Sequence[Row]) -> list[int]:
        """Insert ``rows`` and return their new primary keys, in order."""
        if not rows:
            return []
        return self._statement(connection, rows[0]).insert_with_ids(connection, rows)

    def _statement(self, connection: Connection, first: Row) -> _Statement:
        dialect = connection.dialect
        key = (dialect.name, tuple(first))
        statement = self._prepared.get(key)
        if statement is None:
            kind = _Copy if dialect.name == "postgresql" else _ExecuteMany
            statement = self._prepared[key] = kind(self.table, tuple(first), dialect)
        return statement


class _Statement(ABC):
    """One table and one set of given columns; the others get their defaults."""

    def __init__(self, table: Table, given: tuple[str, ...], dialect: Dialect) -> None:
        self.table = table
        self.given = given
        self.key = _primary_key(table)
        self.defaulted = tuple(
            column for column in table.columns
            if column.name not in given and column.default is not None and column is not self.key)
        self.columns = (*given, *(column.name for column in self.defaulted))
        self.processors: tuple[_Processor, ...] = tuple(
            _processor(table.c[name], dialect) for name in self.columns)

    def values(self, rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        """Driver values for each row, in ``self.columns`` order."""
        # Column by column: one comprehension per column beats a generator per row.
        columns = [[row[name] for row in rows] for name in self.given]
        columns += [[_default(column)] * len(rows) for column in self.defaulted]
        # None goes through the processor too, as in a Core INSERT (a JSON column stores
        # it as JSON null, not SQL NULL).
        converted = [values if process is None else [process(value) for value in values]
                     for process, values in zip(self.processors, columns, strict=True)]
        return list(zip(*converted, strict=True))

    @abstractmethod
    def insert(self, connection: Connection, rows: Sequence[Row]) -> None:
        """Insert ``rows``."""

    @abstractmethod
    def insert_with_ids(self, connection: Connection, rows: Sequence[Row]) -> list[int]:
        """Insert ``rows``; their new primary keys, in order."""


class _Copy(_Statement):
    """PostgreSQL: COPY, with ids taken from the sequence first when they are wanted."""

    def __init__(self, table: Table, given: tuple[str, ...], dialect: Dialect) -> None:
        super().__init__(table, given, dialect)
        self.copy = _CopySql(table, self.columns, dialect)
        self.copy_with_id = _CopySql(table, (self.key.name, *self.columns), dialect)
        self.next_ids = text(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', '{self.key.name}')) "
            "FROM generate_series(1, :count)")

    def insert(self, connection: Connection, rows: Sequence[Row]) -> None:
        self.copy.run(connection, self.values(rows))

    def insert_with_ids(self, connection: Connection, rows: Sequence[Row]) -> list[int]:
        ids = list(connection.scalars(self.next_ids, {"count": len(rows)}))
        values = [(row_id, *row) for row_id, row in zip(ids, self.values(rows), strict=True)]
        self.copy_with_id.run(connection, values)
        return ids


class _CopySql:
    """One binary COPY: the server reads binary values without parsing text."""

    def __init__(self, table: Table, columns: Sequence[str], dialect: Dialect) -> None:
        self.sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        # The types as PostgreSQL names them ("VARCHAR(100)" -> "varchar"), for the dumpers.
        self.types = [_LENGTH.sub("", table.c[name].type.compile(dialect=dialect)).lower()
                      for name in columns]

    def run(self, connection: Connection, values: list[tuple[Any, ...]]) -> None:
        with _driver_errors(connection, self.sql), _driver(connection).cursor() as cursor, \
                cursor.copy(self.sql) as copy:
            copy.set_types(self.types)
            for row in values:
                copy.write_row(row)


class _ExecuteMany(_Statement):
    """SQLite (any driver with a positional paramstyle): the driver's executemany."""

    def __init__(self, table: Table, given: tuple[str, ...], dialect: Dialect) -> None:
        super().__init__(table, given, dialect)
        compiled = insert(table).compile(dialect=dialect, column_keys=list(self.columns))
        order = compiled.positiontup
        if order is None:
            raise TypeError(f"{dialect.name}: bulk inserts need a positional paramstyle")
        self.sql = compiled.string
        where = {name: index for index, name in enumerate(self.columns)}
        self.order = [where[name] for name in order]

    def _ordered(self, rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        return [tuple(values[i] for i in self.order) for values in self.values(rows)]

    def insert(self, connection: Connection, rows: Sequence[Row]) -> None:
        cursor = _driver(connection).cursor()
        try:
            with _driver_errors(connection, self.sql):
                cursor.executemany(self.sql, self._ordered(rows))
        finally:
            cursor.close()

    def insert_with_ids(self, connection: Connection, rows: Sequence[Row]) -> list[int]:
        cursor = _driver(connection).cursor()
        ids = []
        try:
            with _driver_errors(connection, self.sql):
                for values in self._ordered(rows):
                    cursor.execute(self.sql, values)
                    ids.append(cursor.lastrowid)
        finally:
            cursor.close()
        return ids


def _driver(connection: Connection) -> Any:
    """The DBAPI connection under ``connection``, in its transaction."""
    driver = connection.connection.driver_connection
    if driver is None:
        raise RuntimeError("the connection is closed")
    return driver


@contextmanager
def _driver_errors(connection: Connection, statement: str) -> Iterator[None]:
    """The driver's errors as SQLAlchemy's (IntegrityError, OperationalError...), as they
    would be raised had SQLAlchemy run the statement: callers tell a race from an outage
    by them."""
    base = connection.dialect.loaded_dbapi.Error
    try:
        yield
    except base as exc:
        raise DBAPIError.instance(statement, None, exc, base, dialect=connection.dialect) from exc


def _primary_key(table: Table) -> Column[Any]:
    (key,) = table.primary_key.columns
    return key


def _processor(column: Column[Any], dialect: Dialect) -> _Processor:
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _default(column: Column[Any]) -> Any:
    default = column.default
    if not isinstance(default, ColumnDefault):
        raise TypeError(f"{column}: only Python-side defaults can be applied in bulk")
    # SQLAlchemy wraps a default callable to take the execution context; none of ours use it.
    return default.arg(None) if default.is_callable else default.arg
