"""Aggregates the charts and /metrics draw: counted and bucketed by the database, not in Python.

Two SQL constructs keep the queries the same on SQLite and PostgreSQL:
``seconds_between`` (an interval as seconds) and ``utc_day`` (a timestamp's UTC
date as ``YYYY-MM-DD`` text).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, String, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from ingest.store.models import Event, Message, Request, Response
from ingest.timeutil import utcnow

# Seconds from delivery to record: the poller should record within seconds of arrival.
DELIVERY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)
# Seconds from request to decision: people answer in minutes to days.
DECISION_BUCKETS = (300.0, 1800.0, 3600.0, 14400.0, 86400.0, 259200.0)


class seconds_between(FunctionElement[float]):
    """``end - start`` in seconds, as a float, on either database."""

    type = Float()
    name = "seconds_between"
    inherit_cache = True


class utc_day(FunctionElement[str]):
    """The UTC calendar day of a timestamp, as ``YYYY-MM-DD``."""

    type = String()
    name = "utc_day"
    inherit_cache = True


def _arguments(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


@compiles(seconds_between, "postgresql")
def _seconds_between_pg(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _arguments(element, compiler, **kw)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _arguments(element, compiler, **kw)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(utc_day, "postgresql")
def _utc_day_pg(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    (moment,) = _arguments(element, compiler, **kw)
    return f"to_char(({moment}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite holds naive UTC text (see UTCDateTime), so the date is its first ten characters.
    (moment,) = _arguments(element, compiler, **kw)
    return f"strftime('%Y-%m-%d', {moment})"


@dataclass(frozen=True)
class Buckets:
    """A histogram as Prometheus wants it: cumulative counts per upper bound, total, sum."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    count: int
    total: float

    def per_bucket(self) -> tuple[int, ...]:
        """Counts in each bucket (not cumulative), with the overflow bucket last."""
        edges = (0, *self.cumulative, self.count)
        return tuple(high - low for low, high in itertools.pairwise(edges))


def _bucket_columns(seconds: ColumnElement[float], bounds: Sequence[float]) -> list[Any]:
    return [
        *(func.coalesce(func.sum(case((seconds <= bound, 1), else_=0)), 0) for bound in bounds),
        func.count(seconds),
        func.coalesce(func.sum(seconds), 0.0),
    ]


def _buckets(bounds: Sequence[float], row: Sequence[Any]) -> Buckets:
    n = len(bounds)
    return Buckets(tuple(bounds), tuple(int(v) for v in row[:n]), int(row[n]), float(row[n + 1]))


def delivery_latency(session: Session, bounds: Sequence[float] = DELIVERY_BUCKETS) -> Buckets:
    """Messages by seconds from delivery (``received_at``) to record (``recorded_at``)."""
    seconds = seconds_between(Message.received_at, Message.recorded_at)
    row = session.execute(
        select(*_bucket_columns(seconds, bounds)).where(Message.received_at.is_not(None))
    ).one()
    return _buckets(bounds, row)


def time_to_decision(
    session: Session, bounds: Sequence[float] = DECISION_BUCKETS
) -> dict[str, Buckets]:
    """Decided requests by seconds from creation to decision, per request kind."""
    seconds = seconds_between(Request.created_at, Request.decided_at)
    query = (
        select(Request.kind, *_bucket_columns(seconds, bounds))
        .where(Request.decided_at.is_not(None))
        .group_by(Request.kind)
        .order_by(Request.kind)
    )
    return {str(kind): _buckets(bounds, row) for kind, *row in session.execute(query)}


def decisions_per_day(
    session: Session, days: int = 30, now: datetime | None = None
) -> dict[str, dict[str, int]]:
    """Decisions per UTC day and intent over the last ``days`` days; every day is present.

    A decision is a request's deciding response: replies that were not counted, came after
    the decision or were one vote of several are not decisions.
    """
    first = (now or utcnow()).astimezone(UTC).date() - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, tzinfo=UTC)
    day = utc_day(Response.received_at)
    query = (
        select(day, Response.intent, func.count())
        .where(Response.decisive.is_(True), Response.received_at >= start)
        .group_by(day, Response.intent)
    )
    result: dict[str, dict[str, int]] = {
        (first + timedelta(days=n)).isoformat(): {} for n in range(days)
    }
    for label, intent, count in session.execute(query):
        if label in result:
            result[label][str(intent)] = int(count)
    return result


def messages_by_mailbox_kind_status(session: Session) -> list[tuple[str, str, str, int]]:
    """(mailbox, kind, status, count) for every message recorded; kind '' when unknown."""
    query = select(Message.mailbox, Message.kind, Message.status, func.count()).group_by(
        Message.mailbox, Message.kind, Message.status
    )
    return [
        (mailbox, str(kind) if kind else "", str(status), int(count))
        for mailbox, kind, status, count in session.execute(query)
    ]


def count_by(
    session: Session, column: QueryableAttribute[Any], *where: ColumnElement[bool]
) -> dict[str, int]:
    """Rows per value of ``column`` (e.g. responses per intent), as text keys."""
    query = select(column, func.count()).where(*where).group_by(column)
    return {str(value or ""): int(count) for value, count in session.execute(query)}


def auth_failures_by_mailbox(session: Session) -> dict[str, int]:
    """``auth.failed`` events (one per failure episode) per mailbox."""
    return count_by(session, Event.mailbox, Event.type == "auth.failed")
