"""Contracts of the parse hop: what a raw message becomes before correlation.

Everything here is a plain value (frozen dataclass or enum) so the parser stays
pure: bytes in, ``ParsedMessage`` out, no database, no network.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class MessageKind(enum.StrEnum):
    """What sort of message arrived; only ``reply`` can carry a decision."""

    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    RECEIPT = "receipt"
    NEW = "new"


class Intent(enum.StrEnum):
    """What the person said. ``unknown`` whenever there is any doubt."""

    APPROVE = "approve"
    REJECT = "reject"
    ACKNOWLEDGE = "acknowledge"
    # A short "yes" with no decision word: the decide hop maps it per request kind.
    AFFIRM = "affirm"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ParseLimits:
    """Bounds that keep one hostile message from exhausting the worker."""

    max_bytes: int = 25 * 1024 * 1024
    max_parts: int = 500
    max_depth: int = 20
    max_headers: int = 1000
    max_text_chars: int = 200_000


@dataclass(frozen=True)
class SenderInfo:
    """Who the message says it is from, and whether we believe it.

    ``verified`` is True only when From parsed one unambiguous way and a trusted
    Authentication-Results header passed; False when something contradicts the
    claim; None when nothing proves or disproves it (no trusted results).
    """

    address: str | None
    display_name: str = ""
    verified: bool | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReplyText:
    """The new text of a reply, with what was removed to get it."""

    text: str
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class IntentResult:
    """The intent read from a reply and the evidence for it."""

    intent: Intent
    language: str | None = None
    reasons: tuple[str, ...] = ()
    # An instruction written after the decision ("..., but please notify X").
    note: str | None = None


class TokenSource(enum.StrEnum):
    """Where a request's token was found in a message, most trusted first."""

    HEADERS = "In-Reply-To/References"
    PLUS_ADDRESS = "plus-address"
    SUBJECT = "subject tag"
    FOOTER = "body footer"


@dataclass(frozen=True)
class TokenCandidate:
    """A token as found in one place of a message (not yet looked up or verified)."""

    token: str
    source: TokenSource


@dataclass(frozen=True)
class ParsedMessage:
    """Everything the later hops need from one message.

    ``problem`` is set (and ``kind``/``intent`` are then meaningless) when the
    message could not be parsed safely: a limit was hit or the bytes are not a
    message. It is one user-facing sentence, stored as the quarantine reason.
    """

    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    sender: SenderInfo
    recipients: tuple[str, ...]
    date: datetime | None
    kind: MessageKind
    body_text: str
    reply_text: str
    intent: Intent
    language: str | None = None
    # An instruction the replier attached to the decision ("…, but please notify X").
    note: str | None = None
    reasons: tuple[str, ...] = ()
    intent_reasons: tuple[str, ...] = ()
    defects: tuple[str, ...] = ()
    problem: str | None = None
    # Every distinct (token, place), most trusted place first: what correlate looks up.
    tokens: tuple[TokenCandidate, ...] = ()
    # The few decoded headers later hops read (today: From as written, for the record).
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def evidence(self) -> tuple[str, ...]:
        """Every reason, parse first, then intent: what ``ackmail parse`` shows and ops read."""
        return (*self.reasons, *self.intent_reasons)
