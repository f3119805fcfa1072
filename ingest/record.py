"""The store hop: writes a message, its response, the request's new state and the events.

Everything here runs inside the caller's transaction; nothing commits on its own.
Events are the outbox the rules engine reads, so they are written beside the
rows they describe, never after.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ingest.decide import Decision
from ingest.parse.base import ParsedMessage
from ingest.sources.base import SourceRef
from ingest.store.models import (
    Event,
    Message,
    MessageStatus,
    RawMessage,
    Recipient,
    Request,
    Response,
)
from ingest.timeutil import isoformat_z

_MAX_TEXT = 64 * 1024


def content_hash(raw: bytes) -> str:
    """The second identity of a message, for re-scans after a UIDVALIDITY change."""
    return hashlib.sha256(raw).hexdigest()


def find_recorded(
    session: Session, source: SourceRef, digest: str, message_id: str | None
) -> Message | None:
    """The row already recorded for this message: same place, or same bytes and Message-ID.

    Two lookups rather than one OR: each then uses its own index (the unique source
    identity, the content hash) instead of scanning the mailbox's rows.
    """
    same_place = select(Message).where(
        Message.mailbox == source.mailbox, Message.source_key == source.source_key
    )
    found = session.scalars(same_place).first()
    if found is not None:
        return found
    same_bytes = select(Message).where(
        Message.content_hash == digest, Message.mailbox == source.mailbox
    )
    if message_id:
        same_bytes = same_bytes.where(Message.message_id_header == message_id)
    return session.scalars(same_bytes.limit(1)).first()


def record_message(
    session: Session,
    source: SourceRef,
    raw: bytes,
    parsed: ParsedMessage | None,
    *,
    status: MessageStatus,
    reason: str,
    reasons: list[str],
    request: Request | None = None,
    keep_raw: bool = True,
) -> Message:
    """A row for every message seen, whatever became of it (and its bytes, for reprocessing)."""
    message = Message(
        mailbox=source.mailbox,
        source_key=source.source_key,
        folder=source.folder,
        uidvalidity=source.uidvalidity,
        uid=source.uid,
        uidl=source.uidl,
        filename=source.filename,
        message_id_header=_clip(parsed.message_id if parsed else None, 998),
        content_hash=content_hash(raw),
        size=len(raw),
        sender=_clip(parsed.sender.address if parsed else None, 320),
        sender_verified=parsed.sender.verified if parsed else None,
        subject=_clip(parsed.subject if parsed else None, 998),
        kind=parsed.kind if parsed and not parsed.problem else None,
        status=status,
        reason=_clip(reason, _MAX_TEXT) or "",
        reasons=reasons,
        request_id=request.id if request else None,
        received_at=source.received_at,
    )
    session.add(message)
    session.flush()
    if keep_raw:
        session.add(RawMessage(message_id=message.id, raw=raw))
    return message


def prune_raw(session: Session, older_than: datetime) -> int:
    """Forget the bytes of messages stored before ``older_than``; returns how many."""
    result = session.execute(delete(RawMessage).where(RawMessage.stored_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)


def record_response(
    session: Session,
    message: Message,
    request: Request,
    recipient: Recipient | None,
    parsed: ParsedMessage,
    decision: Decision,
    received_at: datetime,
    evidence: list[str],
) -> Response:
    """The reply as an answer to ``request``, counted or not, with the reason."""
    sender = parsed.sender
    response = Response(
        request_id=request.id,
        recipient_id=recipient.id if recipient else None,
        message_id=message.id,
        mailbox=message.mailbox,
        address=_clip(sender.address or parsed.headers.get("From", ""), 320) or "",
        verified_address=sender.address if sender.verified else None,
        sender_verified=sender.verified,
        intent=parsed.intent,
        reply_text=_clip(parsed.reply_text, _MAX_TEXT) or "",
        counted=decision.counted,
        decisive=decision.decisive,
        reason=decision.reason,
        evidence=evidence,
        sent_at=parsed.date,
        received_at=received_at,
    )
    session.add(response)
    session.flush()
    return response


def settle(request: Request, decision: Decision, when: datetime) -> None:
    """Move the request to its decided state (only a decisive response calls this)."""
    if decision.new_status is not None:
        request.status = decision.new_status
        request.decided_at = when


def add_event(
    session: Session,
    event_type: str,
    *,
    message: Message | None = None,
    request: Request | None = None,
    response: Response | None = None,
    detail: dict[str, Any] | None = None,
) -> Event:
    """Append one event to the outbox with a self-contained payload for the rules engine."""
    payload: dict[str, Any] = {"event": event_type, **(detail or {})}
    if request is not None:
        payload["request"] = request_payload(request)
    if response is not None:
        payload["response"] = {
            "id": response.id,
            "address": response.address,
            "intent": str(response.intent),
            "reply_text": response.reply_text,
            "counted": response.counted,
            "decisive": response.decisive,
            "reason": response.reason,
            "sender_verified": response.sender_verified,
        }
    if message is not None:
        payload["message"] = {
            "id": message.id,
            "mailbox": message.mailbox,
            "message_id": message.message_id_header,
            "sender": message.sender,
            "subject": message.subject,
            "kind": str(message.kind) if message.kind else None,
            "status": str(message.status),
            "reason": message.reason,
        }
    event = Event(
        type=event_type,
        request_id=request.id if request else None,
        response_id=response.id if response else None,
        message_id=message.id if message else None,
        mailbox=message.mailbox if message else None,
        payload=payload,
    )
    session.add(event)
    return event


def request_payload(request: Request) -> dict[str, Any]:
    """The request as rules and webhooks see it."""
    return {
        "id": request.id,
        "kind": str(request.kind),
        "ref": request.ref,
        "subject": request.subject,
        "status": str(request.status),
        "policy": request.policy,
        "created_at": isoformat_z(request.created_at),
        "expires_at": isoformat_z(request.expires_at),
        "decided_at": isoformat_z(request.decided_at),
    }


def _clip(text: str | None, limit: int) -> str | None:
    return text[:limit] if text else text
