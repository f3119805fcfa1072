"""The store hop's rows: a message's identity, events and their payloads, a request's
new state, and the pruning of kept bytes (``ingest.store.recorder`` writes a batch's rows).

Everything here runs inside the caller's transaction; nothing commits on its own.
Events are the outbox the rules engine reads, so they are written beside the
rows they describe, never after.

The payload is the contract with the rules and with every webhook receiver:
``EventPayload`` and its sections below, versioned by ``PAYLOAD_VERSION``, with a
JSON schema made from them (``ingest.store.event_schema``) that README prints.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, NotRequired, Protocol, Required, TypedDict

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ingest.parse.base import Intent, MessageKind
from ingest.store.models import Event, MessageStatus, RawMessage, Request
from ingest.timeutil import isoformat_z

# Raised when a field changes meaning or goes away; a new field keeps the version.
# Payloads stored before the version was written have none: they are version 1.
PAYLOAD_VERSION = 1


class RequestPayload(TypedDict):
    """The request an event is about, as it was when the event was written."""

    id: int | None
    kind: str
    ref: str
    subject: str | None
    status: str
    policy: str
    created_at: str | None
    expires_at: str | None
    decided_at: str | None


class ResponsePayload(TypedDict):
    """A recorded answer: who, what they said, and whether it counted and decided."""

    id: int | None
    address: str
    intent: str
    reply_text: str
    # The instruction kept with the decision; absent from payloads written before it was.
    note: NotRequired[str | None]
    counted: bool
    decisive: bool
    reason: str
    sender_verified: bool | None


class MessagePayload(TypedDict):
    """The message an event is about, and what became of it."""

    id: int | None
    mailbox: str
    message_id: str | None
    sender: str | None
    subject: str | None
    kind: str | None
    status: str
    reason: str


class EventPayload(TypedDict, total=False):
    """What rules match and webhooks receive; which sections an event type carries is
    ``rules.fields.EVENTS``. The mailbox, cause, fix, command and warnings fields belong
    to the sign-in events (``auth.failed``, ``auth.expiring``)."""

    version: int
    event: Required[str]
    request: RequestPayload
    response: ResponsePayload
    message: MessagePayload
    mailbox: str
    cause: str
    fix: str
    command: str | None
    warnings: list[str]


def content_hash(raw: bytes) -> str:
    """The second identity of a message, for re-scans after a UIDVALIDITY change."""
    return hashlib.sha256(raw).hexdigest()


def prune_raw(session: Session, older_than: datetime) -> int:
    """Forget the bytes of messages stored before ``older_than``; returns how many."""
    result = session.execute(delete(RawMessage).where(RawMessage.stored_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)


class MessageFacts(Protocol):
    """What an event tells of a message (an ORM row, or a row a batch is writing)."""

    @property
    def id(self) -> int | None: ...
    @property
    def mailbox(self) -> str: ...
    @property
    def message_id_header(self) -> str | None: ...
    @property
    def sender(self) -> str | None: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def kind(self) -> MessageKind | None: ...
    @property
    def status(self) -> MessageStatus: ...
    @property
    def reason(self) -> str: ...


class ResponseFacts(Protocol):
    """What an event tells of a response (an ORM row, or a row a batch is writing)."""

    @property
    def id(self) -> int | None: ...
    @property
    def address(self) -> str: ...
    @property
    def intent(self) -> Intent: ...
    @property
    def reply_text(self) -> str: ...
    @property
    def note(self) -> str | None: ...
    @property
    def counted(self) -> bool: ...
    @property
    def decisive(self) -> bool: ...
    @property
    def reason(self) -> str: ...
    @property
    def sender_verified(self) -> bool | None: ...


def add_event(
    session: Session,
    event_type: str,
    *,
    message: MessageFacts | None = None,
    request: Request | None = None,
    response: ResponseFacts | None = None,
    detail: dict[str, Any] | None = None,
) -> Event:
    """Append one event to the outbox with a self-contained payload for the rules engine."""
    event = Event(**event_values(event_type, message=message, request=request,
                                 response=response, detail=detail))
    session.add(event)
    return event


def event_values(
    event_type: str,
    *,
    message: MessageFacts | None = None,
    request: Request | None = None,
    response: ResponseFacts | None = None,
    detail: dict[str, Any] | None = None,
    request_state: RequestPayload | None = None,
) -> dict[str, Any]:
    """An ``events`` row: the ids it names, and a payload that needs no other row.

    ``request_state`` is ``request_payload(request)`` taken earlier, when the row is
    written after the request changed again."""
    payload: EventPayload = {"version": PAYLOAD_VERSION, "event": event_type,
                             **(detail or {})}  # type: ignore[typeddict-item]
    if request is not None:
        payload["request"] = request_state if request_state is not None else \
            request_payload(request)
    if response is not None:
        payload["response"] = {
            "id": response.id,
            "address": response.address,
            "intent": str(response.intent),
            "reply_text": response.reply_text,
            "note": response.note,
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
    return {
        "type": event_type,
        "request_id": request.id if request else None,
        "response_id": response.id if response else None,
        "message_id": message.id if message else None,
        "mailbox": message.mailbox if message else None,
        "payload": payload,
    }


def request_payload(request: Request) -> RequestPayload:
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


def clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters, to fit its column."""
    return text[:limit] if text else text
