"""One message through parse -> correlate -> decide -> store, against both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, update

from ingest.errors import UserError
from ingest.parse.base import Intent
from ingest.pipeline import Arrival, process_message, reprocess
from ingest.register import RegisteredRequest
from ingest.sources.base import SourceRef
from ingest.store.db import read_session, transaction
from ingest.store.events import prune_raw
from ingest.store.models import (
    Event,
    Message,
    MessageStatus,
    RawMessage,
    Recipient,
    RequestKind,
    RequestStatus,
    Response,
)
from ingest.timeutil import utcnow
from tests.pipeline.support import (
    ALICE,
    BOB,
    CONFIG,
    SECRET,
    events,
    process,
    reply,
    request_status,
    source,
)


def test_an_approval_decides_its_request(
    engine: Engine, create: Callable[..., RegisteredRequest]
) -> None:
    request = create(ALICE)
    result = process(engine, source(1), reply(request.recipients[0].token))
    assert (result.status, result.intent, result.decisive) == (
        MessageStatus.PROCESSED,
        Intent.APPROVE,
        True,
    )
    assert request_status(engine, request.id) == RequestStatus.APPROVED
    assert events(engine) == ["response.recorded", "request.approved"]
    with read_session(engine) as session:
        response = session.scalars(select(Response)).one()
        assert (response.address, response.verified_address, response.counted) == (
            ALICE,
            None,
            True,
        )
        assert response.reply_text == "Approved."
        assert any("token" in e and "In-Reply-To" in e for e in response.evidence)
        event = session.scalars(select(Event).where(Event.type == "request.approved")).one()
        assert event.payload["request"]["ref"] == "CR-1"
        assert event.payload["response"]["intent"] == "approve"


@pytest.mark.parametrize(
    ("kind", "intent", "status"),
    [
        (RequestKind.APPROVAL, Intent.APPROVE, RequestStatus.APPROVED),
        (RequestKind.ALERT, Intent.ACKNOWLEDGE, RequestStatus.ACKNOWLEDGED),
    ],
)
def test_a_short_yes_answers_what_the_request_asked(
    engine: Engine,
    create: Callable[..., RegisteredRequest],
    kind: RequestKind,
    intent: Intent,
    status: RequestStatus,
) -> None:
    request = create(ALICE, kind=kind)
    result = process(engine, source(1), reply(request.recipients[0].token, body="Yes, go ahead."))
    assert (result.intent, result.decisive) == (intent, True)
    assert request_status(engine, request.id) == status
    with read_session(engine) as session:
        response = session.scalars(select(Response)).one()
        assert response.intent == intent  # stored as the decision, never as "affirm"
        assert any("rule 'short affirmative'" in e for e in response.evidence)


def test_each_message_is_recorded_once(
    engine: Engine, create: Callable[..., RegisteredRequest]
) -> None:
    raw = reply(create(ALICE).recipients[0].token)
    first = process(engine, source(1), raw)
    again = process(engine, source(1), raw)
    rescanned = process(engine, SourceRef("approvals", "imap:INBOX:2:1"), raw)
    assert not first.duplicate and again.duplicate and rescanned.duplicate
    assert again.message_id == first.message_id
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1
        assert session.scalar(select(func.count()).select_from(Response)) == 1


def test_a_forwarded_request_cannot_be_decided(
    engine: Engine, create: Callable[..., RegisteredRequest]
) -> None:
    request = create(ALICE)
    result = process(
        engine, source(1), reply(request.recipients[0].token, sender="mallory@evil.test")
    )
    assert result.status == MessageStatus.PROCESSED and not result.decisive
    assert "forwarded request cannot be decided" in result.reason
    assert request_status(engine, request.id) == RequestStatus.PENDING
    assert events(engine) == ["response.recorded"]


def test_later_replies_are_recorded_but_do_not_flip(
    engine: Engine, create: Callable[..., RegisteredRequest]
) -> None:
    request = create(ALICE, BOB)
    alice, bob = (r.token for r in request.recipients)
    process(engine, source(1), reply(alice, body="Rejected, over budget."))
    late = process(engine, source(2), reply(bob, sender=BOB, body="Approve"))
    assert request_status(engine, request.id) == RequestStatus.REJECTED
    assert not late.decisive and "already rejected" in late.reason


def test_auto_replies_bounces_and_unmatched_are_ignored_with_reasons(
    engine: Engine, create: Callable[..., RegisteredRequest]
) -> None:
    token = create(ALICE).recipients[0].token
    ooo = process(
        engine,
        source(1),
        reply(
            token,
            body="I am out of office until Monday.",
            subject=f"Automatic reply: Expense [{token}]",
            headers="Auto-Submitted: auto-replied\r\n",
        ),
    )
    assert ooo.status == MessageStatus.IGNORED and "automatic reply" in ooo.reason
    stray = process(
        engine,
        source(2),
        (
            b"From: bob@example.test\r\nTo: approvals@example.test\r\nSubject: lunch?\r\n"
            b"Message-ID: <lunch@x>\r\n\r\nAnyone for lunch?\r\n"
        ),
    )
    assert stray.status == MessageStatus.IGNORED
    assert "no ackmail token" in stray.reason
    assert events(engine) == ["message.unmatched"]


def test_unknown_and_tampered_tokens_are_never_guessed(
    engine: Engine, create: Callable[..., RegisteredRequest]
) -> None:
    request = create(ALICE)
    real = request.recipients[0].token
    forged = "AAAA-AAAA" if real != "AAAA-AAAA" else "BBBB-BBBB"
    unknown = process(engine, source(1), reply(forged))
    assert unknown.status == MessageStatus.IGNORED
    assert f"token {forged} in In-Reply-To/References matches no request" in unknown.reason
    with transaction(engine) as session:  # someone with database access but not the secret
        session.execute(update(Recipient).values(token=forged))
    tampered = process(engine, source(2), reply(forged, body="Approved!"))
    assert tampered.status == MessageStatus.IGNORED
    assert "does not verify against the token secret" in tampered.reason
    assert request_status(engine, request.id) == RequestStatus.PENDING


def test_the_request_subject_words_never_count(
    engine: Engine, create: Callable[..., RegisteredRequest]
) -> None:
    request = create(ALICE, subject="Approved budget needs review")
    token = request.recipients[0].token
    result = process(
        engine,
        source(1),
        reply(
            token,
            body="Can you call me first?",
            subject=f"RE: Approved budget needs review [{token}]",
        ),
    )
    assert result.intent == Intent.UNKNOWN and not result.decisive


def test_unreadable_messages_and_pipeline_crashes_are_quarantined(
    engine: Engine, create: Callable[..., RegisteredRequest], monkeypatch: pytest.MonkeyPatch
) -> None:
    garbage = process(engine, source(1), b"\x00\x01\x02 not a message")
    assert garbage.status == MessageStatus.QUARANTINED
    token = create(ALICE).recipients[0].token

    def explode(*_args: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("ingest.pipeline.handle.decide", explode)
    crashed = process(engine, source(2), reply(token))
    assert crashed.status == MessageStatus.QUARANTINED
    assert "processing failed (RuntimeError: simulated bug)" in crashed.reason
    assert events(engine) == ["message.quarantined", "message.quarantined"]
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Response)) == 0


def test_old_mail_is_left_alone_unless_it_answers_a_request(
    engine: Engine, create: Callable[..., RegisteredRequest]
) -> None:
    token = create(ALICE).recipients[0].token
    watched_since = utcnow()
    old = SourceRef("approvals", "imap:INBOX:1:1", received_at=watched_since - timedelta(days=400))
    stray = (
        b"From: bob@example.test\r\nSubject: Q3 numbers\r\nMessage-ID: <q3@x>\r\n\r\n"
        b"see attached\r\n"
    )
    left = process_message(engine, CONFIG, Arrival(old, stray, backlog_before=watched_since))
    assert left.status == MessageStatus.IGNORED
    assert "arrived before ackmail started watching this mailbox" in left.reason
    late_reply = SourceRef(
        "approvals", "imap:INBOX:1:2", received_at=watched_since - timedelta(hours=1)
    )
    answered = process_message(engine, CONFIG, Arrival(late_reply, reply(token), watched_since))
    assert answered.decisive
    assert events(engine) == ["response.recorded", "request.approved"]


def test_dry_run_records_nothing(engine: Engine, create: Callable[..., RegisteredRequest]) -> None:
    request = create(ALICE)
    result = process(engine, source(1), reply(request.recipients[0].token), dry_run=True)
    assert result.decisive and "settles the request" in result.reason
    assert request_status(engine, request.id) == RequestStatus.PENDING
    assert events(engine) == []
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_a_quarantined_message_is_reprocessed_once_after_a_fix(
    engine: Engine, create: Callable[..., RegisteredRequest], monkeypatch: pytest.MonkeyPatch
) -> None:
    request = create(ALICE)
    raw = reply(request.recipients[0].token)
    with monkeypatch.context() as patch:
        patch.setattr("ingest.pipeline.handle.decide", lambda *_: 1 / 0)
        broken = process(engine, source(1), raw)
    assert broken.status == MessageStatus.QUARANTINED and broken.message_id is not None
    fixed = reprocess(engine, CONFIG, broken.message_id)
    assert fixed.decisive and request_status(engine, request.id) == RequestStatus.APPROVED
    with read_session(engine) as session:
        messages = session.scalars(select(Message)).all()
        assert [(m.source_key, m.status) for m in messages] == [
            ("imap:INBOX:1:1", MessageStatus.PROCESSED)
        ]
        assert messages[0].reasons[0].startswith(f"reprocessed; was message #{broken.message_id}")
    with pytest.raises(UserError, match="would record its response twice"):
        reprocess(engine, CONFIG, messages[0].id)
    assert process(engine, source(1), raw).duplicate


def test_raw_bytes_are_kept_and_pruned(engine: Engine) -> None:
    result = process(engine, source(1), b"From: a@example.test\r\nSubject: x\r\n\r\nhello\r\n")
    with transaction(engine) as session:
        assert session.get_one(RawMessage, result.message_id).raw.endswith(b"hello\r\n")
        assert prune_raw(session, utcnow() - timedelta(days=1)) == 0
        assert prune_raw(session, utcnow() + timedelta(seconds=1)) == 1
    assert result.message_id is not None
    with pytest.raises(UserError, match="no longer kept"):
        reprocess(engine, CONFIG, result.message_id)


def test_one_structured_log_line_per_message(
    engine: Engine, create: Callable[..., RegisteredRequest], caplog: pytest.LogCaptureFixture
) -> None:
    token = create(ALICE).recipients[0].token
    with caplog.at_level("INFO", logger="ingest.pipeline"):
        process(engine, source(7), reply(token))
    (record,) = [r for r in caplog.records if r.name == "ingest.pipeline"]
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["mailbox"] == "approvals" and fields["uid"] == 7
    assert (fields["kind"], fields["intent"], fields["result"]) == ("reply", "approve", "processed")
    assert fields["decisive"] is True and fields["message_id"].endswith("@mail.example.test>")
    assert SECRET not in str(fields)
