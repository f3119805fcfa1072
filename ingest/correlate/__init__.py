"""The correlate hop: which request (and which of its responders) a message answers.

Tokens are tried in trust order (``ingest.parse.tokens`` finds them); the first that exists and
verifies wins. A forged, altered or unknown token is recorded as such and never
"corrected" into a near match.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager
from sqlalchemy.orm.attributes import set_committed_value

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
    session: Session, messages: Sequence[ParsedMessage], *, secret: str, lock: bool = False
) -> list[Correlation]:
    """The request each message answers: the tokens parse found in the whole batch are
    looked up at once (``recipients_for``; with ``lock``, their requests locked as they are
    read), then each message is matched through its first valid token in trust order. The
    CLI asks with a batch of one, the pipeline with its batch."""
    known = recipients_for(session, {c.token for parsed in messages for c in parsed.tokens},
                           lock=lock)
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


def recipients_for(session: Session, tokens: Collection[str], *,
                   lock: bool = False) -> dict[str, Recipient]:
    """The recipients of ``tokens`` with their requests and every responder of those, in
    one query however many tokens. With ``lock`` the requests' rows are locked as they are
    read (``FOR UPDATE``, in id order: two batches never wait for each other in a circle)."""
    if not tokens:
        return {}
    named = select(Recipient.request_id).where(one_of(session, Recipient.token, tokens))
    query = (select(Request).join(Request.recipients).where(Request.id.in_(named))
             .options(contains_eager(Request.recipients)).order_by(Request.id))
    if lock:
        query = query.with_for_update(of=Request)
    known: dict[str, Recipient] = {}
    for request in session.scalars(query).unique():
        for recipient in request.recipients:
            # The eager load fills the collection, not each recipient's way back to it;
            # set, so the request is neither queried again nor collected with the session's
            # weak references while its recipients are in use.
            set_committed_value(recipient, "request", request)
            if recipient.token in tokens:
                known[recipient.token] = recipient
    return known


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
