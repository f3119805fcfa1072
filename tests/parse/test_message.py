"""The composed parse hop: what parse_message returns for each kind of message."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.parse.base import Intent, MessageKind, ParseLimits
from ingest.parse.message import ParseOptions, parse_message, read_intent, reread_intent

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


def test_non_replies_carry_no_intent_and_no_reply_text() -> None:
    auto = REPLY.replace(b"Message-ID", b"Auto-Submitted: auto-replied\r\nMessage-ID")
    parsed = parse_message(auto, OPTIONS)
    assert parsed.kind == MessageKind.AUTO_REPLY
    assert (parsed.intent, parsed.reply_text, parsed.intent_reasons) == (Intent.UNKNOWN, "", ())


def test_read_intent_drops_the_request_subject_words() -> None:
    subject = b"Subject: RE: Budget approval needed [R7K2-9QXM] - approved"
    parsed = parse_message(
        REPLY.replace(b"Subject: RE: Budget approval needed [R7K2-9QXM]", subject).replace(
            b"Approved.", b"Thanks."
        ),
        OPTIONS,
    )
    assert parsed.intent == Intent.UNKNOWN  # without the request subject nothing is added
    reread = read_intent(parsed, OPTIONS, request_subject="Budget approval needed")
    assert reread.intent == Intent.APPROVE
    assert any("added by the replier: 'approved'" in r for r in reread.intent_reasons)


@pytest.mark.parametrize(("subject", "body", "request_subject"), [
    ("RE: Budget approval needed [R7K2-9QXM] - approved", "Thanks.", "Budget approval needed"),
    ("APPROVED: Re: Budget approval needed", "Thanks.", "Budget approval needed"),
    ("APPROVED: Re: Budget approval needed", "Thanks.", "APPROVED: something"),
    ("Re: Approve the budget", "Rejected.", "Approve the budget"),
    ("Approve the budget", "Thanks.", "Approve the budget"),
    ("RE: Budget approval needed [R7K2-9QXM]", "Approved.", "Budget approval needed"),
])
def test_reread_intent_is_a_full_read_with_the_request_subject(
    subject: str, body: str, request_subject: str
) -> None:
    raw = REPLY.replace(b"RE: Budget approval needed [R7K2-9QXM]", subject.encode()).replace(
        b"Approved.", body.encode())
    parsed = parse_message(raw, OPTIONS)
    full = read_intent(parsed, OPTIONS, request_subject=request_subject)
    again = reread_intent(parsed, OPTIONS, request_subject)
    assert (again.intent, again.intent_reasons) == (full.intent, full.intent_reasons)


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
