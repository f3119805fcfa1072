"""Request tokens as a message carries them: their written form, and where they appear.

A token is 8 Crockford base32 characters written ``R7K2-9QXM`` (``ingest.correlate.tokens``
computes and verifies them). A reply carries its request's token in these places, in the
order we trust them:

1. In-Reply-To / References: the Message-ID ackmail gave the request email;
   the mail client copies it, the sender never types it.
2. The plus-address the reply was sent to (``approvals+R7K2-9QXM@...``).
3. The subject tag ``[R7K2-9QXM]`` — survives in "Re:" subjects, editable.
4. The body footer ``Ref: R7K2-9QXM`` — usually inside the quoted history.
"""

from __future__ import annotations

import re
from typing import Protocol

from ingest.parse.base import TokenCandidate, TokenSource

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Crockford's decoding: letters people confuse with digits read as those digits.
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
_CHAR = "[0-9A-HJ-NP-TV-Z]"
_LOOSE_CHAR = "[0-9A-Z]"
TOKEN_PATTERN = f"{_LOOSE_CHAR}{{4}}-?{_LOOSE_CHAR}{{4}}"
TOKEN_LENGTH = 8


def normalise(text: str) -> str | None:
    """The canonical ``XXXX-XXXX`` form of a token as typed, or None if it cannot be one."""
    compact = text.strip().upper().replace("-", "").replace(" ", "").translate(_CONFUSABLE)
    if len(compact) != TOKEN_LENGTH or any(c not in ALPHABET for c in compact):
        return None
    return f"{compact[:4]}-{compact[4:]}"


def looks_like_token(text: str) -> bool:
    """True when ``text`` has the exact shape of a canonical token."""
    return re.fullmatch(f"{_CHAR}{{4}}-{_CHAR}{{4}}", text) is not None


_MESSAGE_ID = re.compile(rf"<ackmail\.({TOKEN_PATTERN})\.[0-9a-z]+@", re.IGNORECASE)
_SUBJECT_TAG = re.compile(rf"\[\s*({TOKEN_PATTERN})\s*\]", re.IGNORECASE)
_FOOTER = re.compile(rf"^[>\s]*Ref:\s*({TOKEN_PATTERN})\b", re.IGNORECASE | re.MULTILINE)


class Carrier(Protocol):
    """The parts of a message that carry tokens (a decoded or a parsed message)."""

    @property
    def in_reply_to(self) -> str | None: ...
    @property
    def references(self) -> tuple[str, ...]: ...
    @property
    def recipients(self) -> tuple[str, ...]: ...
    @property
    def subject(self) -> str: ...
    @property
    def body_text(self) -> str: ...


def message_id_for(token: str, unique: str, domain: str) -> str:
    """The Message-ID of a request email: it carries the token back in replies' headers."""
    return f"<ackmail.{token}.{unique}@{domain}>"


def find_tokens(parsed: Carrier, *, reply_address: str | None = None) -> list[TokenCandidate]:
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
