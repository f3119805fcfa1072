"""Registering a request: its responders, their tokens, and what each outgoing email must carry."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ingest.config import RequestsConfig
from ingest.correlate import tokens
from ingest.decide import Policy
from ingest.errors import UserError
from ingest.parse.tokens import message_id_for
from ingest.store.models import Recipient, Request, RequestKind, RequestStatus
from ingest.timeutil import isoformat_z, utcnow

_TOKEN_ATTEMPTS = 5
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class NewRequest:
    """What a workflow asks for: who must answer what, by when."""

    kind: RequestKind
    ref: str
    responders: tuple[str, ...]
    subject: str | None = None
    expires_in: timedelta | None = None
    policy: str = "any"


@dataclass(frozen=True)
class RecipientInstructions:
    """What the email to one responder must carry so their reply finds its way back."""

    address: str
    token: str
    headers: dict[str, str]
    subject_tag: str
    footer: str
    subject: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "token": self.token,
            "headers": self.headers,
            "subject": self.subject,
            "subject_tag": self.subject_tag,
            "footer": self.footer,
        }


@dataclass(frozen=True)
class RegisteredRequest:
    """A stored request and the per-responder instructions."""

    id: int
    kind: RequestKind
    ref: str
    status: RequestStatus
    policy: str
    subject: str | None
    expires_at: datetime | None
    recipients: tuple[RecipientInstructions, ...]

    def as_json(self) -> dict[str, Any]:
        """The JSON shape ``ackmail request create`` prints (SPEC.md)."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "ref": self.ref,
            "status": self.status.value,
            "policy": self.policy,
            "subject": self.subject,
            "expires_at": isoformat_z(self.expires_at),
            "recipients": [r.as_json() for r in self.recipients],
        }


def register_request(
    session: Session, new: NewRequest, *, secret: str, config: RequestsConfig
) -> RegisteredRequest:
    """Store a pending request with one token per responder; the caller commits."""
    responders = _responders(new.responders)
    policy = Policy.parse(new.policy, len(responders))
    now = utcnow()
    request = Request(
        kind=new.kind,
        ref=_one_line("ref", new.ref, 200),
        subject=_one_line("subject", new.subject, 900) if new.subject else None,
        status=RequestStatus.PENDING,
        policy=policy.text,
        created_at=now,
        expires_at=now + new.expires_in if new.expires_in else None,
    )
    session.add(request)
    session.flush()
    instructions = tuple(
        _add_recipient(session, request, address, secret, config) for address in responders
    )
    return RegisteredRequest(
        request.id,
        request.kind,
        request.ref,
        request.status,
        request.policy,
        request.subject,
        request.expires_at,
        instructions,
    )


def _responders(addresses: tuple[str, ...]) -> list[str]:
    if not addresses:
        raise UserError("a request needs at least one responder (--responder ADDRESS)")
    unique: list[str] = []
    for text in addresses:
        address = parse_address(text)
        if address not in unique:
            unique.append(address)
    return unique


def parse_address(text: str) -> str:
    """A bare, lower-cased email address, or a UserError saying what is wrong with ``text``."""
    try:
        address = Address(addr_spec=text.strip())
    except (HeaderParseError, ValueError, IndexError):
        address = None
    if address is None or not address.username or "." not in address.domain:
        raise UserError(f"'{text}' is not an email address; write it as name@example.com")
    return address.addr_spec.lower()


def _one_line(field: str, value: str | None, limit: int) -> str:
    """Text that will be echoed into email headers must not smuggle in new header lines."""
    text = (value or "").strip()
    if not text:
        raise UserError(f"the request's {field} is empty; give one")
    if _CONTROL.search(text):
        raise UserError(
            f"the request's {field} contains a line break or control character; give it on one line"
        )
    if len(text) > limit:
        raise UserError(f"the request's {field} is {len(text)} characters, over the {limit} limit")
    return text


def _add_recipient(
    session: Session, request: Request, address: str, secret: str, config: RequestsConfig
) -> RecipientInstructions:
    for _ in range(_TOKEN_ATTEMPTS):
        nonce = tokens.new_nonce()
        token = tokens.compute(secret, request.id, address, nonce)
        recipient = Recipient(
            request_id=request.id,
            address=address,
            token=token,
            token_nonce=nonce,
            outgoing_message_id=message_id_for(
                token, secrets.token_hex(6), config.message_id_domain
            ),
        )
        try:
            with session.begin_nested():
                session.add(recipient)
        except IntegrityError:
            continue  # a 40-bit token collided with a live one: draw another nonce
        return _instructions(request, recipient, config)
    raise UserError("could not draw a unique token after several attempts; try again")


def _instructions(
    request: Request, recipient: Recipient, config: RequestsConfig
) -> RecipientInstructions:
    headers = {"Message-ID": recipient.outgoing_message_id}
    if config.plus_addressing and config.reply_address:
        local, _, domain = config.reply_address.partition("@")
        headers["Reply-To"] = f"{local}+{recipient.token}@{domain}"
    tag = f"[{recipient.token}]"
    subject = f"{request.subject} {tag}" if request.subject else None
    return RecipientInstructions(
        recipient.address, recipient.token, headers, tag, f"Ref: {recipient.token}", subject
    )
