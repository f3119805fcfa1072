"""Engines, sessions and transactions: the one place the rest of the code gets a database from.

The caller owns the transaction (``with transaction(engine) as session:``), so a
message, its response, its events and its outcomes commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Engine,
    any_,
    bindparam,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError
from sqlalchemy.orm import InstrumentedAttribute, Session

from ingest.errors import ConfigError, DatabaseUnavailable

# The databases the migrations and the tests cover.
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url`` with ackmail's per-dialect settings.

    SQLite gets foreign keys (off by default there), WAL so readers do not block
    the poller, and a busy timeout instead of instant "database is locked".
    """
    _require_supported(url)
    try:
        engine = create_engine(url, **options)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(
            f"database URL {safe_url(url)} is not usable ({exc}); write e.g. sqlite:///ackmail.db "
            "or postgresql+psycopg://user@host/db in [database] url or ACKMAIL_DATABASE_URL"
        ) from None
    except ImportError as exc:
        raise ConfigError(
            f"database URL {safe_url(url)} needs a driver that is not installed ({exc}); "
            "install ackmail[postgres] for PostgreSQL"
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _require_supported(url: str) -> None:
    """Refuse a database ackmail has no schema for (MySQL, Oracle...) before loading a driver."""
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        return  # create_engine says what is wrong with the URL
    if backend not in SUPPORTED_BACKENDS:
        raise ConfigError(
            f"database URL {safe_url(url)} is a {backend} database, which ackmail does not "
            "support; use SQLite (sqlite:///ackmail.db) or PostgreSQL "
            "(postgresql+psycopg://user@host/db) in [database] url or ACKMAIL_DATABASE_URL"
        )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def ping(engine: Engine) -> None:
    """Open one connection, or raise DatabaseUnavailable saying which database and why."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        raise DatabaseUnavailable(
            f"cannot connect to the database {engine.url.render_as_string(hide_password=True)}: "
            f"{_first_line(exc.orig)}; check [database] url / ACKMAIL_DATABASE_URL "
            "and that the server is up"
        ) from None


@contextmanager
def database_errors(what: str) -> Iterator[None]:
    """The one boundary where the driver's errors become ackmail's, for every caller.

    A database that cannot be reached, is restarting or refuses a statement is a
    fault that may pass: ``DatabaseUnavailable`` (a TransientError), retried by the
    caller while the messages stay on the server. An ``IntegrityError`` is let through:
    it means another worker wrote the same row, which callers resolve themselves.
    """
    try:
        yield
    except IntegrityError:
        raise
    except DBAPIError as exc:
        raise DatabaseUnavailable(
            f"database error while {what}: {_first_line(exc.orig)}; it will be retried"
        ) from None


def _first_line(error: BaseException | None) -> str:
    text = str(error or "unknown error").strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for queries; nothing it does is committed."""
    with Session(engine) as session:
        yield session


def one_of(session: Session, column: InstrumentedAttribute[Any],
           values: Collection[Any]) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL as ``= ANY(<one array>)``. A batch looks up
    hundreds of values at a time, and one parameter per value cost more to render and
    bind than the query took to run (8 ms for 400 values; 2 ms with one array)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)
