"""The decide hop: does this response count, and does it settle its request?

Checks run in a fixed order, and the first that refuses explains itself; a
response that passes them all is counted toward the request's policy. Every
refusal still leaves the response recorded, so ops can see it and why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from ingest.errors import UserError
from ingest.parse.base import Intent, MessageKind, ParsedMessage, SenderInfo
from ingest.parse.intent import classify_intent, subject_words_added
from ingest.parse.vocabulary import Vocabulary
from ingest.store.models import Recipient, Request, RequestKind, RequestStatus

DECIDING_INTENTS = {
    RequestKind.APPROVAL: {
        Intent.APPROVE: RequestStatus.APPROVED,
        Intent.REJECT: RequestStatus.REJECTED,
    },
    RequestKind.ALERT: {Intent.ACKNOWLEDGE: RequestStatus.ACKNOWLEDGED},
}
# A short "yes" with no decision word says whatever the request asked for.
AFFIRMED = {RequestKind.APPROVAL: Intent.APPROVE, RequestKind.ALERT: Intent.ACKNOWLEDGE}


def answered_intent(kind: RequestKind, intent: Intent) -> Intent:
    """``intent`` as the answer to a request of ``kind``: ``affirm`` becomes what the
    request asks for, so a stored response always holds a decision or ``unknown``."""
    return AFFIRMED[kind] if intent is Intent.AFFIRM else intent


def read_answer(
    request: Request, parsed: ParsedMessage, vocabulary: Vocabulary
) -> tuple[ParsedMessage, tuple[str, ...]]:
    """What a reply says to ``request``, from the verdict parse gave (pure): the intent
    without the words of the request's own subject, and a short affirmative as the
    decision the request asks for. With the reasons these add to the evidence."""
    if parsed.kind == MessageKind.REPLY and request.subject:
        parsed = _without_request_words(parsed, request.subject, vocabulary)
    if parsed.intent is not Intent.AFFIRM:
        return parsed, ()
    intent = answered_intent(request.kind, parsed.intent)
    note = f"a short affirmative to an {request.kind} request: {intent}"
    return replace(parsed, intent=intent), (note,)


def _without_request_words(
    parsed: ParsedMessage, request_subject: str, vocabulary: Vocabulary
) -> ParsedMessage:
    """The intent parse read, read again now that the request's subject is known: the
    subject words the replier added are all that can change (usually none)."""
    if subject_words_added(parsed.subject, request_subject, vocabulary=vocabulary) == \
            subject_words_added(parsed.subject, vocabulary=vocabulary):
        return parsed
    read = classify_intent(parsed.reply_text, parsed.subject, request_subject=request_subject,
                           vocabulary=vocabulary)
    return replace(parsed, intent=read.intent, language=read.language, note=read.note,
                   intent_reasons=read.reasons)


@dataclass(frozen=True)
class Policy:
    """How many responders must agree: ``any`` (1), ``all``, or a count."""

    text: str
    required: int

    @classmethod
    def parse(cls, text: str, responders: int) -> Policy:
        """Read ``any``, ``all`` or a whole number up to the number of responders."""
        value = text.strip().lower()
        if value == "any":
            return cls("any", 1)
        if value == "all":
            return cls("all", responders)
        if value.isdigit() and 1 <= int(value) <= responders:
            return cls(value, int(value))
        raise UserError(
            f"policy '{text}' is not valid for {responders} responder(s); "
            f"use any, all, or a number from 1 to {responders}"
        )


class Answer(Protocol):
    """An earlier response, as deciding needs it (a stored row, or one a batch is writing)."""

    @property
    def id(self) -> int | None: ...
    @property
    def recipient_id(self) -> int | None: ...
    @property
    def address(self) -> str: ...
    @property
    def intent(self) -> Intent: ...
    @property
    def counted(self) -> bool: ...


@dataclass(frozen=True)
class Vote:
    """What the decide hop needs to know about one response."""

    recipient: Recipient | None
    sender: SenderInfo
    intent: Intent
    received_at: datetime


@dataclass(frozen=True)
class Decision:
    """Whether a response counts, whether it settles the request, and why."""

    counted: bool
    new_status: RequestStatus | None
    reason: str

    @property
    def decisive(self) -> bool:
        return self.new_status is not None


Check = Callable[[Request, Vote, Sequence[Answer]], str]


def _is_open(request: Request, vote: Vote, _prior: Sequence[Answer]) -> str:
    if request.status != RequestStatus.PENDING:
        when = f" at {request.decided_at:%Y-%m-%d %H:%M}Z" if request.decided_at else ""
        return f"request was already {request.status}{when}; later replies do not change it"
    if request.expires_at is not None and vote.received_at > request.expires_at:
        return f"request expired at {request.expires_at:%Y-%m-%d %H:%M}Z, before this reply arrived"
    return ""


def _is_its_recipient(request: Request, vote: Vote, _prior: Sequence[Answer]) -> str:
    sender = vote.sender.address
    if vote.recipient is None or sender is None:
        return "the sender's address could not be read"
    if sender == vote.recipient.address:
        return ""
    others = {r.address for r in request.recipients}
    if sender in others:
        return (
            f"{sender} replied with the token issued to {vote.recipient.address}; "
            "each responder must answer from their own email"
        )
    return (
        f"{sender} is not a responder of this request (the token was issued to "
        f"{vote.recipient.address}); a forwarded request cannot be decided by its new reader"
    )


def _is_verified(_request: Request, vote: Vote, _prior: Sequence[Answer]) -> str:
    if vote.sender.verified is False:
        why = "; ".join(vote.sender.reasons) or "sender checks failed"
        return f"sender could not be verified ({why})"
    return ""


def _says_something(request: Request, vote: Vote, _prior: Sequence[Answer]) -> str:
    if vote.intent == Intent.UNKNOWN:
        return "no clear decision in the reply text"
    if vote.intent not in DECIDING_INTENTS[request.kind]:
        wanted = " or ".join(i.value for i in DECIDING_INTENTS[request.kind])
        return f"'{vote.intent}' does not answer an {request.kind} request (it takes {wanted})"
    return ""


def _first_answer(_request: Request, vote: Vote, prior: Sequence[Answer]) -> str:
    earlier = next((r for r in prior if r.counted and r.recipient_id == _recipient_id(vote)), None)
    if earlier is not None:
        return (
            f"{earlier.address} already answered '{earlier.intent}' in response "
            f"#{earlier.id}; the first answer stands"
        )
    return ""


def _recipient_id(vote: Vote) -> int | None:
    return vote.recipient.id if vote.recipient else None


# The order is the order a person would ask the questions; the first "no" is reported.
CHECKS: tuple[Check, ...] = (
    _is_open,  # decided or expired requests stay as they are
    _is_its_recipient,  # tokens are bound to one responder's address
    _is_verified,  # a spoofed From decides nothing
    _says_something,  # unknown or off-kind intents are recorded only
    _first_answer,  # a responder's first valid answer is final
)


def decide(request: Request, vote: Vote, prior: Sequence[Answer]) -> Decision:
    """Judge one response against its request, its policy, and the responses before it."""
    for check in CHECKS:
        refusal = check(request, vote, prior)
        if refusal:
            return Decision(counted=False, new_status=None, reason=refusal)
    return _apply_policy(request, vote, prior)


def _apply_policy(request: Request, vote: Vote, prior: Sequence[Answer]) -> Decision:
    policy = Policy.parse(request.policy, len(request.recipients))
    outcome = DECIDING_INTENTS[request.kind][vote.intent]
    agreeing = 1 + sum(1 for r in prior if r.counted and r.intent == vote.intent)
    if policy.required > 1 and _blocks_quorum(request, vote, prior, policy):
        return Decision(
            True,
            outcome,
            f"reject by {vote.sender.address} settles the request: "
            f"{policy.required} approvals can no longer be reached",
        )
    if agreeing >= policy.required:
        return Decision(
            True,
            outcome,
            f"{vote.intent} by {vote.sender.address} settles the request "
            f"({agreeing} of {policy.required} needed, policy {policy.text})",
        )
    if vote.intent == Intent.REJECT:
        return Decision(True, None, f"counted: {agreeing} reject(s); {policy.required} approvals "
                                    f"can still be reached (policy {policy.text})")
    return Decision(
        True,
        None,
        f"counted: {agreeing} of {policy.required} {vote.intent} answers "
        f"needed (policy {policy.text})",
    )


def _blocks_quorum(request: Request, vote: Vote, prior: Sequence[Answer], policy: Policy) -> bool:
    """A rejection settles an approval once the required approvals can no longer be reached."""
    if vote.intent != Intent.REJECT:
        return False
    rejections = 1 + sum(1 for r in prior if r.counted and r.intent == Intent.REJECT)
    return len(request.recipients) - rejections < policy.required
