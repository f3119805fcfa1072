"""The decide hop: who may decide, policies, first answer wins, expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ingest.decide import Policy, Vote, answered_intent, decide, read_answer
from ingest.errors import UserError
from ingest.parse.base import Intent, MessageKind, SenderInfo
from ingest.parse.intent import classify_intent
from ingest.parse.message import ParseOptions, parse_message
from ingest.store.models import Recipient, Request, RequestKind, RequestStatus, Response
from ingest.timeutil import utcnow

ALICE, BOB, CAROL = "alice@example.test", "bob@example.test", "carol@example.test"


def make_request(
    kind: RequestKind = RequestKind.APPROVAL,
    policy: str = "any",
    responders: tuple[str, ...] = (ALICE, BOB, CAROL),
) -> Request:
    request = Request(
        id=1,
        kind=kind,
        ref="CR-1",
        policy=policy,
        status=RequestStatus.PENDING,
        created_at=utcnow(),
        expires_at=utcnow() + timedelta(days=1),
    )
    request.recipients = [
        Recipient(id=n, address=a, token=f"T{n}", token_nonce="x")
        for n, a in enumerate(responders, 1)
    ]
    return request


def vote(
    request: Request,
    address: str,
    intent: Intent,
    *,
    recipient_of: str | None = None,
    verified: bool | None = True,
) -> Vote:
    owner = recipient_of or address
    recipient = next(r for r in request.recipients if r.address == owner)
    return Vote(
        recipient, SenderInfo(address, verified=verified, reasons=("dmarc=fail",)), intent, utcnow()
    )


def counted(request: Request, address: str, intent: Intent) -> Response:
    recipient = next(r for r in request.recipients if r.address == address)
    return Response(
        id=recipient.id + 100,
        recipient_id=recipient.id,
        address=address,
        intent=intent,
        counted=True,
    )


def test_any_policy_first_approval_decides() -> None:
    request = make_request()
    decision = decide(request, vote(request, ALICE, Intent.APPROVE), [])
    assert decision.counted and decision.new_status == RequestStatus.APPROVED
    assert "settles the request" in decision.reason


def test_all_policy_needs_everyone_and_one_reject_ends_it() -> None:
    request = make_request(policy="all")
    first = decide(request, vote(request, ALICE, Intent.APPROVE), [])
    assert first.counted and first.new_status is None and "1 of 3" in first.reason
    prior = [counted(request, ALICE, Intent.APPROVE), counted(request, BOB, Intent.APPROVE)]
    assert (
        decide(request, vote(request, CAROL, Intent.APPROVE), prior).new_status
        == RequestStatus.APPROVED
    )
    assert (
        decide(request, vote(request, CAROL, Intent.REJECT), prior).new_status
        == RequestStatus.REJECTED
    )


def test_quorum_rejected_once_approvals_cannot_reach_it() -> None:
    request = make_request(policy="2")
    first = decide(request, vote(request, ALICE, Intent.REJECT), [])
    assert first.counted and first.new_status is None
    second = decide(
        request, vote(request, BOB, Intent.REJECT), [counted(request, ALICE, Intent.REJECT)]
    )
    assert second.new_status == RequestStatus.REJECTED
    assert "can no longer be reached" in second.reason


def test_a_forwarded_token_cannot_decide() -> None:
    request = make_request()
    outsider = Vote(
        request.recipients[0],
        SenderInfo("mallory@evil.test", verified=True),
        Intent.APPROVE,
        utcnow(),
    )
    decision = decide(request, outsider, [])
    assert not decision.counted and decision.new_status is None
    assert "forwarded request cannot be decided" in decision.reason
    colleague = decide(request, vote(request, BOB, Intent.APPROVE, recipient_of=ALICE), [])
    assert "replied with the token issued to alice@example.test" in colleague.reason


def test_unverified_sender_cannot_decide() -> None:
    request = make_request()
    decision = decide(request, vote(request, ALICE, Intent.APPROVE, verified=False), [])
    assert not decision.counted
    assert "could not be verified (dmarc=fail)" in decision.reason


def test_unknown_and_off_kind_intents_are_recorded_only() -> None:
    request = make_request()
    assert "no clear decision" in decide(request, vote(request, ALICE, Intent.UNKNOWN), []).reason
    ack = decide(request, vote(request, ALICE, Intent.ACKNOWLEDGE), [])
    assert not ack.counted and "takes approve or reject" in ack.reason
    alert = make_request(kind=RequestKind.ALERT)
    assert (
        decide(alert, vote(alert, ALICE, Intent.ACKNOWLEDGE), []).new_status
        == RequestStatus.ACKNOWLEDGED
    )
    assert not decide(alert, vote(alert, ALICE, Intent.APPROVE), []).counted


def test_first_answer_stands() -> None:
    request = make_request(policy="all")
    prior = [counted(request, ALICE, Intent.APPROVE)]
    decision = decide(request, vote(request, ALICE, Intent.REJECT), prior)
    assert not decision.counted and "the first answer stands" in decision.reason


def test_decided_and_expired_requests_do_not_flip() -> None:
    request = make_request()
    request.status = RequestStatus.REJECTED
    request.decided_at = utcnow()
    assert "already rejected" in decide(request, vote(request, ALICE, Intent.APPROVE), []).reason
    expired = make_request()
    expired.expires_at = utcnow() - timedelta(minutes=1)
    assert "expired at" in decide(expired, vote(expired, ALICE, Intent.APPROVE), []).reason


@pytest.mark.parametrize(
    ("text", "responders", "required"), [("any", 3, 1), ("ALL", 3, 3), ("2", 3, 2)]
)
def test_policy_parse(text: str, responders: int, required: int) -> None:
    assert Policy.parse(text, responders).required == required


@pytest.mark.parametrize("text", ["0", "4", "most", "-1"])
def test_policy_parse_refuses_nonsense(text: str) -> None:
    with pytest.raises(UserError, match="use any, all, or a number from 1 to 3"):
        Policy.parse(text, 3)


@pytest.mark.parametrize(
    ("kind", "intent", "status"),
    [
        (RequestKind.APPROVAL, Intent.APPROVE, RequestStatus.APPROVED),
        (RequestKind.ALERT, Intent.ACKNOWLEDGE, RequestStatus.ACKNOWLEDGED),
    ],
)
def test_a_short_affirmative_answers_what_the_request_asks(
    kind: RequestKind, intent: Intent, status: RequestStatus
) -> None:
    request = make_request(kind)
    assert answered_intent(kind, Intent.AFFIRM) is intent
    decision = decide(request, vote(request, ALICE, answered_intent(kind, Intent.AFFIRM)), [])
    assert decision.new_status is status


def test_only_affirm_is_mapped_per_kind() -> None:
    for intent in (Intent.APPROVE, Intent.REJECT, Intent.ACKNOWLEDGE, Intent.UNKNOWN):
        assert answered_intent(RequestKind.ALERT, intent) is intent
    assert "does not answer" in decide(
        make_request(), vote(make_request(), ALICE, Intent.AFFIRM), []
    ).reason


REPLY = (
    b"From: Alice <alice@example.test>\r\nTo: approvals@example.test\r\n"
    b"Subject: SUBJECT\r\nMessage-ID: <1@example.test>\r\n"
    b"In-Reply-To: <ackmail.R7K2-9QXM.5f3a@example.test>\r\n\r\nBODY\r\n"
)


@pytest.mark.parametrize(("subject", "body", "request_subject"), [
    ("RE: Budget approval needed [R7K2-9QXM] - approved", "Thanks.", "Budget approval needed"),
    ("APPROVED: Re: Budget approval needed", "Thanks.", "Budget approval needed"),
    ("APPROVED: Re: Budget approval needed", "Thanks.", "APPROVED: something"),
    ("Re: Approve the budget", "Rejected.", "Approve the budget"),
    ("Approve the budget", "Thanks.", "Approve the budget"),
    ("RE: Budget approval needed [R7K2-9QXM]", "Approved.", "Budget approval needed"),
])
def test_an_answer_is_read_as_a_full_read_with_the_request_subject(
    subject: str, body: str, request_subject: str
) -> None:
    options = ParseOptions()
    parsed = parse_message(REPLY.replace(b"SUBJECT", subject.encode()).replace(
        b"BODY", body.encode()), options)
    assert parsed.kind is MessageKind.REPLY
    request = make_request()
    request.subject = request_subject
    full = classify_intent(parsed.reply_text, parsed.subject, request_subject=request_subject,
                           vocabulary=options.vocabulary)
    answer, notes = read_answer(request, parsed, options.vocabulary)
    assert (answer.intent, answer.intent_reasons, notes) == (full.intent, full.reasons, ())


def test_a_short_yes_answers_what_the_request_asks_and_says_so() -> None:
    options = ParseOptions()
    parsed = parse_message(REPLY.replace(b"SUBJECT", b"Re: INC-7").replace(b"BODY", b"Yes"),
                           options)
    assert parsed.intent is Intent.AFFIRM
    answer, notes = read_answer(make_request(RequestKind.ALERT), parsed, options.vocabulary)
    assert answer.intent is Intent.ACKNOWLEDGE
    assert notes == ("a short affirmative to an alert request: acknowledge",)


def test_an_answer_drops_the_words_of_the_request_subject() -> None:
    options = ParseOptions()
    subject = b"RE: Budget approval needed [R7K2-9QXM] - approved"
    parsed = parse_message(REPLY.replace(b"SUBJECT", subject).replace(b"BODY", b"Thanks."),
                           options)
    assert parsed.intent == Intent.UNKNOWN  # without the request subject nothing is added
    request = make_request()
    request.subject = "Budget approval needed"
    answer, _ = read_answer(request, parsed, options.vocabulary)
    assert answer.intent == Intent.APPROVE
    assert any("added by the replier: 'approved'" in r for r in answer.intent_reasons)
