"""Where a reply carries its request's token, in the order we trust those places.

1. In-Reply-To / References: the Message-ID ackmail gave the request email;
   the mail client copies it, the sender never types it.
2. The plus-address the reply was sent to (``approvals+R7K2-9QXM@...``).
3. The subject tag ``[R7K2-9QXM]`` — survives in "Re:" subjects, editable.
4. The body footer ``Ref: R7K2-9QXM`` — usually inside the quoted history.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from ingest.correlate.tokens import TOKEN_PATTERN, normalise
from ingest.parse.base import ParsedMessage


class TokenSource(enum.StrEnum):
    """Where a token was found, most trusted first."""

    HEADERS = "In-Reply-To/References"
    PLUS_ADDRESS = "plus-address"
    SUBJECT = "subject tag"
    FOOTER = "body footer"


TRUST_ORDER = tuple(TokenSource)

_MESSAGE_ID = re.compile(rf"<ackmail\.({TOKEN_PATTERN})\.[0-9a-z]+@", re.IGNORECASE)
_SUBJECT_TAG = re.compile(rf"\[\s*({TOKEN_PATTERN})\s*\]", re.IGNORECASE)
_FOOTER = re.compile(rf"^[>\s]*Ref:\s*({TOKEN_PATTERN})\b", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class TokenCandidate:
    """A token as found in one place of a message."""

    token: str
    source: TokenSource


def message_id_for(token: str, unique: str, domain: str) -> str:
    """The Message-ID of a request email: it carries the token back in replies' headers."""
    return f"<ackmail.{token}.{unique}@{domain}>"


def find_tokens(parsed: ParsedMessage, *, reply_address: str | None = None) -> list[TokenCandidate]:
    """Every distinct (token, place) in ``parsed``, most trusted place first."""
    found: list[TokenCandidate] = []
    header_text = " ".join(filter(None, (parsed.in_reply_to, *parsed.references)))
    for source, texts, pattern in (
        (TokenSource.HEADERS, [header_text], _MESSAGE_ID),
        (TokenSource.PLUS_ADDRESS, _plus_tags(parsed.recipients, reply_address), None),
        (TokenSource.SUBJECT, [parsed.subject], _SUBJECT_TAG),
        (TokenSource.FOOTER, _footer_text(parsed.body_text), _FOOTER),
    ):
        for raw in _matches(texts, pattern):
            token = normalise(raw)
            candidate = TokenCandidate(token, source) if token else None
            if candidate and candidate not in found:
                found.append(candidate)
    return found


def _footer_text(body: str) -> list[str]:
    """The body, when it has a footer's ``Ref:`` at all: most mail has none, and the search
    line by line costs more than this look."""
    return [body] if "ref:" in body.lower() else []


def _matches(texts: list[str], pattern: re.Pattern[str] | None) -> list[str]:
    if pattern is None:
        return texts
    return [m.group(1) for text in texts for m in pattern.finditer(text)]


def _plus_tags(recipients: tuple[str, ...], reply_address: str | None) -> list[str]:
    """The ``+tag`` of each recipient address that is (a plus-form of) the reply address."""
    base = reply_address.lower() if reply_address else None
    tags = []
    for address in recipients:
        local, _, domain = address.lower().rpartition("@")
        user, plus, tag = local.partition("+")
        if plus and (base is None or f"{user}@{domain}" == base):
            tags.append(tag)
    return tags
