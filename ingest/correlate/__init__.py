"""The correlate hop: which request (and which of its responders) a message answers.

Tokens are tried in trust order (``ingest.parse.tokens`` finds them); the first that exists and
verifies wins. A forged, altered or unknown token is recorded as such and never
"corrected" into a near match.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from ingest.correlate import tokens
from ingest.parse.base import ParsedMessage, TokenCandidate, TokenSource
from ingest.store.db import one_of
from ingest.store.models import Recipient, Request


@dataclass(frozen=True)
class Correlation:
    """The outcome of matching one message to a request."""

    token: str | None = None
    source: TokenSource | None = None
    recipient: Recipient | None = None
    request: Request | None = None
    reasons: tuple[str, ...] = ()

    @property
    def matched(self) -> bool:
        return self.request is not None

    @property
    def problem(self) -> str:
        """Why nothing matched, as one sentence for the message record."""
        if self.matched:
            return ""
        if self.reasons:
            return self.reasons[0]
        return "no ackmail token in headers, recipient address, subject or body"


def correlate(
    session: Session, messages: Sequence[ParsedMessage], *, secret: str
) -> list[Correlation]:
    """The request each message answers: the tokens parse found in the whole batch are
    looked up at once (``recipients_for``), then each message is matched through its first
    valid token in trust order. The CLI asks with a batch of one, the pipeline with its batch."""
    known = recipients_for(session, {c.token for parsed in messages for c in parsed.tokens})
    return [_match(parsed.tokens, known, secret) for parsed in messages]


def _match(
    candidates: Sequence[TokenCandidate], known: Mapping[str, Recipient], secret: str
) -> Correlation:
    """The first candidate, in trust order, that names a recipient in ``known`` and verifies."""
    reasons: list[str] = []
    chosen: tuple[TokenCandidate, Recipient] | None = None
    for candidate in candidates:
        recipient = known.get(candidate.token)
        problem = _problem(candidate, recipient, secret)
        if problem or recipient is None:
            reasons.append(problem)
            continue
        if chosen is None:
            chosen = (candidate, recipient)
            reasons.insert(0, f"token {candidate.token} found in {candidate.source}")
        elif recipient.request_id != chosen[1].request_id:
            reasons.append(
                f"another valid token {candidate.token} in {candidate.source} names request "
                f"#{recipient.request_id}; the more trusted {chosen[0].source} wins"
            )
    if chosen is None:
        return Correlation(reasons=tuple(reasons))
    candidate, recipient = chosen
    return Correlation(
        token=candidate.token,
        source=candidate.source,
        recipient=recipient,
        request=recipient.request,
        reasons=tuple(reasons),
    )


def recipients_for(session: Session, tokens: Collection[str]) -> dict[str, Recipient]:
    """The recipients of ``tokens`` with their requests, and all deciding needs of those
    (every responder, every response so far), in three queries however many tokens."""
    if not tokens:
        return {}
    request = joinedload(Recipient.request)
    query = select(Recipient).where(one_of(session, Recipient.token, tokens)).options(
        request.selectinload(Request.recipients), request.selectinload(Request.responses))
    return {recipient.token: recipient for recipient in session.scalars(query)}


def _problem(candidate: TokenCandidate, recipient: Recipient | None, secret: str) -> str:
    """'' when the token names a recipient and verifies, else why it cannot be used."""
    if recipient is None:
        return f"token {candidate.token} in {candidate.source} matches no request"
    if tokens.verify(
        secret, candidate.token, recipient.request_id, recipient.address, recipient.token_nonce
    ):
        return ""
    return (
        f"token {candidate.token} in {candidate.source} does not verify against the token "
        "secret (forged, altered, or issued under another secret)"
    )
