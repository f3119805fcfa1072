"""The composed parse hop: what parse_message returns for each kind of message."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.parse.base import Intent, MessageKind, ParseLimits, TokenCandidate, TokenSource
from ingest.parse.message import ParseOptions, parse_message

OPTIONS = ParseOptions()

REPLY = (
    b"From: Alice <alice@example.test>\r\nTo: approvals@example.test\r\n"
    b"Subject: RE: Budget approval needed [R7K2-9QXM]\r\nMessage-ID: <1@example.test>\r\n"
    b"In-Reply-To: <ackmail.R7K2-9QXM.5f3a@example.test>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Approved.\r\n\r\nOn Mon, 2 Nov 2026 at 09:00, Approvals <approvals@example.test> wrote:\r\n"
    b"> Please reply APPROVE or REJECT.\r\n> Ref: R7K2-9QXM\r\n"
)


def test_a_reply_gets_kind_sender_reply_text_and_intent_with_evidence() -> None:
    parsed = parse_message(REPLY, OPTIONS)
    assert (parsed.kind, parsed.intent, parsed.reply_text) == (
        MessageKind.REPLY,
        Intent.APPROVE,
        "Approved.",
    )
    assert parsed.sender.address == "alice@example.test"
    assert parsed.headers == {"From": "Alice <alice@example.test>"}
    assert "Ref: R7K2-9QXM" in parsed.body_text  # the footer survives for correlation
    assert parsed.evidence == (*parsed.reasons, *parsed.intent_reasons)
    assert any("approved" in reason for reason in parsed.intent_reasons)
    # Where it carries its request's token, most trusted first: what correlate looks up.
    assert parsed.tokens == tuple(TokenCandidate("R7K2-9QXM", source) for source in (
        TokenSource.HEADERS, TokenSource.SUBJECT, TokenSource.FOOTER))


def test_a_new_message_gets_reply_text_only_with_a_token_when_asked() -> None:
    new = REPLY.replace(b"In-Reply-To: <ackmail.R7K2-9QXM.5f3a@example.test>\r\n", b"").replace(
        b"RE: Budget approval needed [R7K2-9QXM]", b"Budget")
    plain = new.replace(b"> Ref: R7K2-9QXM\r\n", b"")
    assert parse_message(new, OPTIONS, new_reply=False).reply_text == "Approved."
    assert parse_message(plain, OPTIONS, new_reply=False).reply_text == ""
    assert parse_message(plain, OPTIONS).reply_text == "Approved."


def test_non_replies_carry_no_intent_and_no_reply_text() -> None:
    auto = REPLY.replace(b"Message-ID", b"Auto-Submitted: auto-replied\r\nMessage-ID")
    parsed = parse_message(auto, OPTIONS)
    assert parsed.kind == MessageKind.AUTO_REPLY
    assert (parsed.intent, parsed.reply_text, parsed.intent_reasons) == (Intent.UNKNOWN, "", ())


def test_a_message_over_a_limit_is_a_problem_not_an_exception() -> None:
    parsed = parse_message(REPLY, ParseOptions(limits=ParseLimits(max_bytes=100)))
    assert parsed.problem is not None and "limit" in parsed.problem
    assert parsed.intent == Intent.UNKNOWN


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=4000) | st.text(max_size=3000).map(lambda t: t.encode("utf-8", "replace"))
)
def test_any_bytes_give_a_result_or_a_problem_quickly(raw: bytes) -> None:
    started = time.perf_counter()
    parsed = parse_message(REPLY[:200] + raw, OPTIONS)
    assert time.perf_counter() - started < 2.0
    assert parsed.problem is not None or parsed.kind in MessageKind
    assert parsed.intent in Intent
