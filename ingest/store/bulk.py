"""Bulk writes for the pipeline's hot path, the fastest way each database offers.

A batch's rows cost more in SQLAlchemy's per-row parameter handling (~30 us a row)
than in the database, and on PostgreSQL every statement is a round trip, which on a
busy machine costs more than the rows it carries. So each column's own bind
processor turns the values into driver values once, column by column, and then:
- PostgreSQL: the ids of every table that needs them come from the sequences in one
  query, and all the tables' rows go in with ONE statement: an ``INSERT ... SELECT *
  FROM unnest(<one array per column>)`` per table (``UPDATE ... FROM unnest(...)`` for
  rows that change), chained as data-modifying CTEs (parents first; foreign keys are
  checked at the end of the statement). The text depends only on the tables and
  columns, so the server prepares it once.
- SQLite: the driver's ``executemany`` per table; ids from ``last_insert_rowid()``,
  since under the transaction's write lock SQLite numbers new rows consecutively
  (one more than the largest rowid). There is no round trip to save.
The values get the conversions and column defaults SQLAlchemy itself would apply, so
a row reads back the same whichever way it was written. Everything runs inside the
caller's transaction.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Protocol

from sqlalchemy import Column, ColumnDefault, Connection, Dialect, Table, bindparam, insert, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert, Update

Row = Mapping[str, Any]
_LENGTH = re.compile(r"\(.*\)")
_Processor = Callable[[Any], Any] | None


class Keyed(Protocol):
    """A row that learns its primary key from the write."""

    id: int | None

    def values(self) -> Row:
        """The row's columns (not its id); may use the ids of rows written before it."""
        ...


class BulkTable:
    """One table's bulk writes: its columns' processors and defaults, worked out once."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.key = _primary_key(table)
        self._columns: dict[tuple[str, tuple[str, ...], bool], Columns] = {}

    def columns(self, dialect: Dialect, given: tuple[str, ...], *, update: bool = False
                ) -> Columns:
        """The columns a row with keys ``given`` fills: with the defaults for an INSERT,
        only those given for an UPDATE (by primary key, which ``given`` names)."""
        found = self._columns.get((dialect.name, given, update))
        if found is None:
            found = Columns(self, given, dialect, defaults=not update)
            self._columns[(dialect.name, given, update)] = found
        return found


class Columns:
    """One table and one set of given columns; the others get their defaults."""

    def __init__(self, bulk: BulkTable, given: tuple[str, ...], dialect: Dialect, *,
                 defaults: bool) -> None:
        table = bulk.table
        self.table = table
        self.key = bulk.key
        self.dialect = dialect
        self.given = given
        self.defaulted = tuple(
            column for column in table.columns
            if defaults and column.name not in given and column.default is not None
            and column is not bulk.key)
        self.names = (*given, *(column.name for column in self.defaulted))
        self.processors: tuple[_Processor, ...] = tuple(
            _processor(table.c[name], dialect) for name in self.names)
        # The types as PostgreSQL names them ("VARCHAR(100)" -> "varchar"): an explicit
        # cast to a length would cut a long value where the column refuses it.
        self.types = tuple(_LENGTH.sub("", table.c[name].type.compile(dialect=dialect)).lower()
                           for name in self.names)

    @cached_property
    def positional(self) -> tuple[str, tuple[int, ...]]:
        """The INSERT for a driver with a positional paramstyle, and where each of its
        parameters is in ``names``."""
        statement = insert(self.table)
        return self._positional(statement, {name: name for name in self.names},
                                column_keys=list(self.names))

    @cached_property
    def positional_update(self) -> tuple[str, tuple[int, ...]]:
        """``positional`` for an UPDATE of the given columns by primary key."""
        changed = {f"new_{name}": name for name in self.names if name != self.key.name}
        statement = update(self.table).where(self.key == bindparam("old_key")).values(
            {name: bindparam(parameter) for parameter, name in changed.items()})
        return self._positional(statement, {"old_key": self.key.name, **changed})

    def _positional(self, statement: Insert | Update, columns: Mapping[str, str],
                    **options: Any) -> tuple[str, tuple[int, ...]]:
        """``statement`` compiled, and for each of its parameters (named by ``columns``:
        parameter -> column) where its column is in ``names``."""
        compiled = statement.compile(dialect=self.dialect, **options)
        if compiled.positiontup is None:
            raise TypeError(f"{self.dialect.name}: bulk writes need a positional paramstyle")
        return compiled.string, tuple(self.names.index(columns[parameter])
                                      for parameter in compiled.positiontup)

    def values(self, rows: Sequence[Row]) -> list[list[Any]]:
        """Driver values, one list per column in ``names`` order."""
        given = self.processors[:len(self.given)]
        # None goes through the processor too, as in a Core INSERT (a JSON column stores
        # it as JSON null, not SQL NULL).
        columns = [[row[name] for row in rows] if process is None
                   else [process(row[name]) for row in rows]
                   for name, process in zip(self.given, given, strict=True)]
        # A default is one value per call (one recorded_at for the batch): converted once.
        defaults = self.processors[len(self.given):]
        for column, process in zip(self.defaulted, defaults, strict=True):
            value = _default(column)
            columns.append([value if process is None else process(value)] * len(rows))
        return columns


@dataclass
class _Part:
    """One table's rows in a write: keyed items, or rows built once earlier ids are set,
    or rows to UPDATE by primary key."""

    table: BulkTable
    keyed: Sequence[Keyed] | None = None
    build: Callable[[], Sequence[Row]] | None = None
    update: bool = False

    def rows(self) -> Sequence[Row]:
        if self.keyed is not None:
            return [item.values() for item in self.keyed]
        assert self.build is not None
        return self.build()


class BulkWrite:
    """Rows for several tables, written together in the order given (parents first; the
    updates of rows that exist already may come anywhere)."""

    def __init__(self) -> None:
        self._parts: list[_Part] = []

    def keyed(self, table: BulkTable, items: Sequence[Keyed]) -> BulkWrite:
        """Insert ``items``; each gets its ``id``, which later parts' rows may use."""
        self._parts.append(_Part(table, keyed=items))
        return self

    def rows(self, table: BulkTable,
             rows: Sequence[Row] | Callable[[], Sequence[Row]]) -> BulkWrite:
        """Insert ``rows``, or the rows a callable builds once the earlier ids are known."""
        self._parts.append(_Part(table, build=rows if callable(rows) else lambda: rows))
        return self

    def updates(self, table: BulkTable, rows: Sequence[Row]) -> BulkWrite:
        """UPDATE existing rows: each names its primary key and the columns' new values."""
        self._parts.append(_Part(table, build=lambda: rows, update=True))
        return self

    def run(self, connection: Connection) -> None:
        """Write every part, in the caller's transaction."""
        writer = _Postgres if connection.dialect.name == "postgresql" else _ExecuteMany
        writer(connection).write(self._parts)


class _Writer(ABC):
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect

    def _columns(self, part: _Part, rows: Sequence[Row]) -> Columns:
        return part.table.columns(self.dialect, tuple(rows[0]), update=part.update)

    @abstractmethod
    def write(self, parts: Sequence[_Part]) -> None:
        """Write the parts' rows, in order."""


class _Postgres(_Writer):
    """Ids from the sequences in one query, then every row in one statement."""

    def write(self, parts: Sequence[_Part]) -> None:
        self._number([part for part in parts if part.keyed])
        statements: list[_Statement] = []
        parameters: list[list[Any]] = []
        for part in parts:
            rows = part.rows()
            if not rows:
                continue
            columns = self._columns(part, rows)
            names, types, values = columns.names, columns.types, columns.values(rows)
            if part.keyed is not None:
                names, types = (part.table.key.name, *names), ("bigint", *types)
                values = [[item.id for item in part.keyed], *values]
            statements.append(_Statement(part.table, names, types, part.update))
            parameters.extend(values)
        if statements:
            sql = _chained(tuple(statements))
            with _driver_errors(self.connection, sql), _driver(self.connection).cursor() as cursor:
                cursor.execute(sql, parameters)

    def _number(self, parts: Sequence[_Part]) -> None:
        """Give every keyed item its id, from its table's sequence, in one round trip."""
        if not parts:
            return
        sql = "SELECT " + ", ".join(
            f"ARRAY(SELECT nextval(pg_get_serial_sequence('{part.table.table.name}', "
            f"'{part.table.key.name}')) FROM generate_series(1, %s))" for part in parts)
        with _driver_errors(self.connection, sql), _driver(self.connection).cursor() as cursor:
            cursor.execute(sql, [len(part.keyed or ()) for part in parts])
            numbered = cursor.fetchone()
        for part, ids in zip(parts, numbered, strict=True):
            for item, item_id in zip(part.keyed or (), ids, strict=True):
                item.id = item_id


@dataclass(frozen=True)
class _Statement:
    """One part of the chained statement: a table, its columns and their PostgreSQL types."""

    table: BulkTable
    names: tuple[str, ...]
    types: tuple[str, ...]
    update: bool

    def sql(self) -> str:
        name = self.table.table.name
        arrays = "unnest(" + ", ".join(f"%b::{kind}[]" for kind in self.types) + ")"
        if not self.update:
            return f"INSERT INTO {name} ({', '.join(self.names)}) SELECT * FROM {arrays}"
        key = self.table.key.name
        changed = ", ".join(f"{column} = v.{column}" for column in self.names if column != key)
        return (f"UPDATE {name} SET {changed} FROM {arrays} AS v({', '.join(self.names)}) "
                f"WHERE {name}.{key} = v.{key}")


@lru_cache(maxsize=64)
def _chained(statements: tuple[_Statement, ...]) -> str:
    """``WITH w0 AS (...), w1 AS (...) INSERT ...``: one statement, one array per column."""
    *first, last = (statement.sql() for statement in statements)
    chain = ", ".join(f"w{n} AS ({sql})" for n, sql in enumerate(first))
    return f"WITH {chain} {last}" if chain else last


class _ExecuteMany(_Writer):
    """SQLite (any driver with a positional paramstyle): the driver's executemany."""

    def write(self, parts: Sequence[_Part]) -> None:
        for part in parts:
            rows = part.rows()
            if not rows:
                continue
            columns = self._columns(part, rows)
            sql, order = columns.positional_update if part.update else columns.positional
            values = columns.values(rows)
            self._executemany(sql, list(zip(*(values[i] for i in order), strict=True)))
            if part.keyed is not None:
                last = self._last_rowid()
                for item, item_id in zip(part.keyed, range(last - len(rows) + 1, last + 1),
                                         strict=True):
                    item.id = item_id

    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        cursor = _driver(self.connection).cursor()
        try:
            with _driver_errors(self.connection, sql):
                cursor.executemany(sql, rows)
        finally:
            cursor.close()

    def _last_rowid(self) -> int:
        """The rowid of the row this connection inserted last."""
        (last,) = _driver(self.connection).execute("SELECT last_insert_rowid()").fetchone()
        return int(last)


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
