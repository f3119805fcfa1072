"""Small builders of database rows for tests; each returns the flushed object."""

from __future__ import annotations

import hashlib
import itertools
from datetime import datetime

from sqlalchemy.orm import Session

from ingest.parse.base import Intent, MessageKind
from ingest.store.models import (
    Message,
    MessageStatus,
    Recipient,
    Request,
    RequestKind,
    RequestStatus,
    Response,
)
from ingest.timeutil import utcnow

_counter = itertools.count(1)


def add_request(
    session: Session,
    *,
    ref: str = "CR-1",
    kind: RequestKind = RequestKind.APPROVAL,
    status: RequestStatus = RequestStatus.PENDING,
    responders: tuple[str, ...] = (),
    created_at: datetime | None = None,
) -> Request:
    request = Request(
        kind=kind, ref=ref, status=status, policy="any", created_at=created_at or utcnow()
    )
    session.add(request)
    session.flush()
    for address in responders:
        n = next(_counter)
        session.add(
            Recipient(
                request_id=request.id,
                address=address,
                token=f"TK{n:06d}", token_nonce="0",
                outgoing_message_id=f"<ackmail.{n}@test>",
            )
        )
    session.flush()
    return request


def add_message(
    session: Session,
    *,
    mailbox: str = "approvals",
    status: MessageStatus = MessageStatus.PROCESSED,
    reason: str = "",
    kind: MessageKind | None = MessageKind.REPLY,
    source_key: str | None = None,
    recorded_at: datetime | None = None,
) -> Message:
    n = next(_counter)
    message = Message(
        mailbox=mailbox,
        source_key=source_key or f"uid:{n}",
        content_hash=hashlib.sha256(str(n).encode()).hexdigest(),
        status=status,
        reason=reason,
        kind=kind,
        sender="alice@example.test",
        recorded_at=recorded_at or utcnow(),
    )
    session.add(message)
    session.flush()
    return message


def add_response(
    session: Session,
    request: Request,
    *,
    intent: Intent = Intent.APPROVE,
    address: str = "alice@example.test",
    mailbox: str = "approvals",
    received_at: datetime | None = None,
    decisive: bool = True,
) -> Response:
    message = add_message(session, mailbox=mailbox)
    response = Response(
        request_id=request.id,
        message_id=message.id,
        mailbox=mailbox,
        address=address,
        verified_address=address,
        sender_verified=True,
        intent=intent,
        reply_text="Approved.",
        decisive=decisive,
        received_at=received_at or utcnow(),
        evidence=["keyword 'approved'"],
    )
    session.add(response)
    session.flush()
    return response
