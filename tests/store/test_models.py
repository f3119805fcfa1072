"""Schema-level guarantees: UTC timestamps, unique identities, checked enums, the ops views."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from ingest.parse.base import Intent
from ingest.store.db import read_session, transaction
from ingest.store.models import Message, MessageStatus, Recipient, Request, RequestStatus
from tests.factories import add_message, add_request, add_response


def test_timestamps_come_back_aware_in_utc(engine: Engine) -> None:
    berlin = timezone(timedelta(hours=2))
    created = datetime(2026, 11, 2, 12, 30, tzinfo=berlin)
    with transaction(engine) as session:
        request_id = add_request(session, created_at=created).id
    with read_session(engine) as session:
        stored = session.get_one(Request, request_id).created_at
    assert stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)
    assert stored == created
    assert stored.hour == 10


def test_naive_timestamps_are_refused(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), transaction(engine) as session:
        add_request(session, created_at=datetime(2026, 11, 2, 12, 30))


def test_a_message_source_identity_is_recorded_once(engine: Engine) -> None:
    with pytest.raises(IntegrityError), transaction(engine) as session:
        add_message(session, mailbox="approvals", source_key="imap:INBOX:7:42")
        add_message(session, mailbox="approvals", source_key="imap:INBOX:7:42")
    with transaction(engine) as session:
        add_message(session, mailbox="approvals", source_key="imap:INBOX:7:42")
        add_message(session, mailbox="alerts", source_key="imap:INBOX:7:42")


def test_a_token_belongs_to_one_recipient(engine: Engine) -> None:
    with transaction(engine) as session:
        request = add_request(session)
        session.add(
            Recipient(
                request_id=request.id,
                address="a@example.test",
                token="R7K2-9QXM",
                token_nonce="n",
                outgoing_message_id="<a@test>",
            )
        )
    with pytest.raises(IntegrityError), transaction(engine) as session:
        session.add(
            Recipient(
                request_id=request.id,
                address="b@example.test",
                token="R7K2-9QXM",
                token_nonce="n",
                outgoing_message_id="<b@test>",
            )
        )


def test_status_values_are_checked_by_the_database(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO requests (kind, ref, status, policy, created_at) "
                "VALUES ('approval', 'X', 'maybe', 'any', CURRENT_TIMESTAMP)"
            )
        )


def test_views_answer_ops_questions_without_joins(engine: Engine) -> None:
    with transaction(engine) as session:
        pending = add_request(
            session, ref="CR-1", responders=("alice@example.test", "bob@example.test")
        )
        decided = add_request(session, ref="CR-2", status=RequestStatus.APPROVED)
        add_response(session, decided, intent=Intent.APPROVE, address="carol@example.test")
        add_message(session, status=MessageStatus.IGNORED, reason="auto-reply (Auto-Submitted)")
        add_message(session, status=MessageStatus.QUARANTINED, reason="message over the size limit")
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT ref, responders, responses FROM pending_requests")
        ).all()
        assert [tuple(r) for r in rows] == [("CR-1", 2, 0)]
        decision = connection.execute(
            text("SELECT ref, responder, intent, request_status FROM decisions")
        ).one()
        assert tuple(decision) == ("CR-2", "carol@example.test", "approve", "approved")
        reasons = connection.execute(
            text("SELECT status, reason FROM ignored_messages ORDER BY id")
        ).all()
        assert [tuple(r) for r in reasons] == [
            ("ignored", "auto-reply (Auto-Submitted)"),
            ("quarantined", "message over the size limit"),
        ]
    assert pending.id != decided.id


def test_deleting_a_request_keeps_its_messages(engine: Engine) -> None:
    with transaction(engine) as session:
        request = add_request(session)
        message_id = add_response(session, request).message_id
    with transaction(engine) as session:
        session.delete(session.get_one(Request, request.id))
    with read_session(engine) as session:
        assert session.scalar(select(Request).where(Request.id == request.id)) is None
        assert session.get(Message, message_id) is not None


def test_utc_now_default_is_aware(engine: Engine) -> None:
    with transaction(engine) as session:
        request = add_request(session)
    assert request.created_at.tzinfo is not None
    assert abs(request.created_at - datetime.now(UTC)) < timedelta(minutes=1)
