"""Hostile and broken messages through the whole pipeline: each ends as a recorded, clear
reason, nothing decides what it may not, and the next message is still processed."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from ingest.config import RequestsConfig
from ingest.parse.base import ParseLimits
from ingest.parse.message import ParseOptions
from ingest.pipeline import Arrival, PipelineConfig, Processed, process_message
from ingest.register import NewRequest, RegisteredRequest, register_request
from ingest.sources.base import SourceRef
from ingest.store.db import read_session, transaction
from ingest.store.models import Event, Message, MessageStatus, RawMessage, RequestKind

SECRET = "hostile-input-secret"
CONFIG = PipelineConfig(ParseOptions(trusted_authserv_id="mx.example.test"), SECRET)
ALICE, BOB = "alice@example.test", "bob@example.test"
PASS = "Authentication-Results: mx.example.test; dmarc=pass header.from=example.test\r\n"


def reply(token: str, *, sender: str = ALICE, body: str = "Approved.", headers: str = PASS,
          subject: str = "RE: Purchase [{token}]") -> bytes:
    return (f"From: {sender}\r\nTo: approvals@example.test\r\n"
            f"Subject: {subject.format(token=token)}\r\nMessage-ID: <{hash(body + sender)}@x>\r\n"
            f"In-Reply-To: <ackmail.{token}.5f3a@example.test>\r\n{headers}"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()


@pytest.fixture
def tokens(engine: Engine) -> dict[str, str]:
    with transaction(engine) as session:
        made: list[RegisteredRequest] = [
            register_request(session, NewRequest(RequestKind.APPROVAL, f"CR-{who}", (who,),
                                                 "Purchase", timedelta(days=1)),
                             secret=SECRET, config=RequestsConfig())
            for who in (ALICE, BOB)]
    return {r.recipients[0].address: r.recipients[0].token for r in made}


@pytest.fixture
def process(engine: Engine) -> Callable[[bytes], Processed]:
    keys = iter(range(1, 10_000))

    def run(raw: bytes) -> Processed:
        return process_message(engine, CONFIG, Arrival(SourceRef("inbox", f"k{next(keys)}"), raw))

    return run


def test_spoofed_forwarded_and_borrowed_tokens_decide_nothing(
        engine: Engine, tokens: dict[str, str], process: Callable[[bytes], Processed]) -> None:
    alice = tokens[ALICE]
    cases = {
        "display name": (reply(alice, sender=f'"{ALICE}" <mallory@evil.test>'), "display name"),
        "two From": (reply(alice, headers=f"From: {ALICE}\r\n{PASS}"), "From"),
        "dmarc fail": (reply(alice, headers="Authentication-Results: mx.example.test; "
                             "dmarc=fail header.from=example.test\r\n"), "dmarc=fail"),
        "forwarded": (reply(alice, sender="mallory@evil.test"), "not a responder"),
        "other request's responder": (reply(alice, sender=BOB), "not a responder of this"),
    }
    for name, (raw, expected) in cases.items():
        result = process(raw)
        assert result.status == MessageStatus.PROCESSED and not result.decisive, name
        assert expected in " ".join(_evidence(engine, result)), name
    assert process(reply(alice)).decisive  # the real responder still decides afterwards


def test_forged_and_replayed_tokens(tokens: dict[str, str],
                                    process: Callable[[bytes], Processed]) -> None:
    forged = "ZZZZ-ZZZZ"
    assert "matches no request" in process(reply(forged)).reason
    raw = reply(tokens[ALICE])
    assert process(raw).decisive
    assert process(raw).duplicate  # the same message again, elsewhere in the mailbox
    later = process(reply(tokens[ALICE], body="Approved again!"))
    assert not later.decisive and "already approved" in later.reason


@pytest.mark.parametrize(("name", "raw", "expected"), [
    ("100,000 headers", b"X-H: v\r\n" * 100_000 + b"\r\nbody", "header"),
    ("10,000 parts", b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
     + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 10_000 + b"--b--\r\n", "part"),
    ("1,000-deep nesting", b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (n, n)
        for n in range(1000)) + b"\r\nx\r\n", "part|nest|level"),  # whichever limit hits first
    ("not a message", b"\x00\x01\x02\xff" * 100, "not"),
])
def test_messages_past_the_limits_are_quarantined_with_the_reason(
        engine: Engine, process: Callable[[bytes], Processed], name: str, raw: bytes,
        expected: str) -> None:
    result = process(raw)
    assert result.status == MessageStatus.QUARANTINED, name
    assert re.search(expected, result.reason.lower()) and "\n" not in result.reason, name
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Event)
                              .where(Event.type == "message.quarantined")) == 1


def test_a_50_mb_message_is_quarantined_and_its_bytes_not_kept(engine: Engine) -> None:
    raw = b"From: a@example.test\r\nSubject: big\r\n\r\n" + b"A" * (50 * 1024 * 1024)
    config = PipelineConfig(ParseOptions(limits=ParseLimits()), SECRET)
    result = process_message(engine, config, Arrival(SourceRef("inbox", "big"), raw))
    assert result.status == MessageStatus.QUARANTINED and "limit" in result.reason
    with read_session(engine) as session:
        assert session.get(RawMessage, result.message_id) is None


def test_broken_charsets_nul_bytes_and_header_injection_are_recorded_safely(
        engine: Engine, tokens: dict[str, str], process: Callable[[bytes], Processed]) -> None:
    latin = ("From: a@example.test\r\nSubject: caf\xe9\r\nContent-Type: text/plain; "
             "charset=x-unknown\r\n\r\nna\xefve \x00 text\r\n").encode("latin-1")
    assert process(latin).status == MessageStatus.IGNORED
    injected = "=?utf-8?b?" + base64.b64encode(
        b"Hello\r\nBcc: victim@example.test").decode() + "?="
    result = process(reply(tokens[BOB], sender=BOB, subject=injected + " [{token}]",
                           body="<script>alert(1)</script> approved"))
    with read_session(engine) as session:
        subject = session.scalar(select(Message.subject).where(Message.id == result.message_id))
    assert subject is not None and "\r" not in subject and "\n" not in subject
    assert "Bcc: victim" in subject  # kept as text, harmless on one line


def _evidence(engine: Engine, result: Processed) -> list[str]:
    """The reason and every piece of evidence stored with the message."""
    with read_session(engine) as session:
        stored = session.scalar(select(Message.reasons).where(Message.id == result.message_id))
    return [result.reason, *(stored or [])]
