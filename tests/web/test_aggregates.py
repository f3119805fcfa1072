"""The aggregates behind the charts and /metrics, computed by SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from ingest.parse.base import Intent
from ingest.store.db import read_session, transaction
from ingest.store.events import add_event
from ingest.store.models import Message, RequestKind, RequestStatus, Response
from ingest.web import aggregates
from ingest.web.aggregates import seconds_between, utc_day
from tests.factories import add_message, add_request, add_response

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def far_from_utc(session: Session, engine: Engine) -> None:
    """Give a PostgreSQL session a zone 14 h from UTC: days must still be UTC days."""
    if engine.dialect.name == "postgresql":
        session.execute(text("SET TIME ZONE 'Pacific/Kiritimati'"))


def test_seconds_between_and_utc_day(engine: Engine) -> None:
    start = datetime(2026, 11, 19, 23, 59, 59, 250_000, tzinfo=UTC)
    with transaction(engine) as session:
        message = add_message(session)
        message.received_at, message.recorded_at = start, start + timedelta(seconds=1.5)
    with read_session(engine) as session:
        far_from_utc(session, engine)
        seconds, day = session.execute(select(
            seconds_between(Message.received_at, Message.recorded_at),
            utc_day(Message.received_at))).one()
    assert abs(seconds - 1.5) < 0.01
    assert day == "2026-11-19"


def test_decisions_per_day_counts_deciding_responses_by_utc_day_and_intent(engine: Engine) -> None:
    with transaction(engine) as session:
        request = add_request(session)
        for when, intent in [
            (datetime(2026, 11, 20, 0, 30, tzinfo=UTC), Intent.APPROVE),
            (datetime(2026, 11, 20, 9, 0, tzinfo=UTC), Intent.APPROVE),
            (datetime(2026, 11, 19, 23, 30, tzinfo=UTC), Intent.REJECT),
            (datetime(2026, 10, 22, 0, 0, tzinfo=UTC), Intent.ACKNOWLEDGE),  # first day shown
            (datetime(2026, 10, 21, 23, 59, tzinfo=UTC), Intent.ACKNOWLEDGE),  # too old
        ]:
            add_response(session, request, intent=intent, received_at=when)
        # A vote that did not settle its request, and a reply after the decision: no decisions.
        for intent in (Intent.APPROVE, Intent.REJECT):
            add_response(session, request, intent=intent, decisive=False,
                         received_at=datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    with read_session(engine) as session:
        far_from_utc(session, engine)
        days = aggregates.decisions_per_day(session, 30, now=NOW)
    assert len(days) == 30 and next(iter(days)) == "2026-10-22" and list(days)[-1] == "2026-11-20"
    assert {day: counts for day, counts in days.items() if counts} == {
        "2026-11-20": {"approve": 2}, "2026-11-19": {"reject": 1},
        "2026-10-22": {"acknowledge": 1}}


def test_time_to_decision_buckets_per_kind(engine: Engine) -> None:
    created = NOW - timedelta(days=10)
    with transaction(engine) as session:
        for kind, after in [(RequestKind.APPROVAL, timedelta(seconds=60)),
                            (RequestKind.APPROVAL, timedelta(hours=2)),
                            (RequestKind.APPROVAL, timedelta(days=5)),
                            (RequestKind.ALERT, timedelta(minutes=20)),
                            (RequestKind.ALERT, None)]:
            request = add_request(session, kind=kind, created_at=created,
                                  status=RequestStatus.PENDING if after is None
                                  else RequestStatus.APPROVED)
            request.decided_at = None if after is None else created + after
    with read_session(engine) as session:
        buckets = aggregates.time_to_decision(session)
    # bounds: 5 min, 30 min, 1 h, 4 h, 1 d, 3 d, then the overflow bucket
    assert buckets["approval"].per_bucket() == (1, 0, 0, 1, 0, 0, 1)
    assert buckets["alert"].per_bucket() == (0, 1, 0, 0, 0, 0, 0)
    assert buckets["approval"].count == 3
    assert abs(buckets["approval"].total - (60 + 7200 + 5 * 86400)) < 1


def test_delivery_latency_is_cumulative(engine: Engine) -> None:
    with transaction(engine) as session:
        for delay in (0.5, 3, 3, 100, None):
            message = add_message(session, recorded_at=NOW)
            message.received_at = None if delay is None else NOW - timedelta(seconds=delay)
    with read_session(engine) as session:
        buckets = aggregates.delivery_latency(session, bounds=(1.0, 5.0, 60.0))
    assert (buckets.cumulative, buckets.count) == ((1, 3, 3), 4)
    assert buckets.per_bucket() == (1, 2, 0, 1)
    assert abs(buckets.total - 106.5) < 0.01


def test_count_by_and_auth_failures(engine: Engine) -> None:
    with transaction(engine) as session:
        request = add_request(session)
        add_response(session, request, intent=Intent.APPROVE)
        add_response(session, request, intent=Intent.APPROVE)
        add_response(session, request, intent=Intent.UNKNOWN)
        for mailbox in ("a", "a", "b"):
            add_event(session, "auth.failed").mailbox = mailbox
        add_event(session, "message.unmatched").mailbox = "a"
    with read_session(engine) as session:
        assert aggregates.count_by(session, Response.intent) == {"approve": 2, "unknown": 1}
        assert aggregates.auth_failures_by_mailbox(session) == {"a": 2, "b": 1}
