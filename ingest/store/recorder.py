"""The store hop for a batch: what is recorded already, and the batch's writes in bulk.

A message costs its INSERTs, not its parsing, so a batch writes its rows with a
few multi-row statements (Core, not one ORM object per row): the messages first,
for their ids, then the responses, then the bytes and the events that name them.
Everything runs inside the caller's transaction; nothing commits here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ingest.decide import Decision
from ingest.parse.base import Intent, MessageKind, ParsedMessage
from ingest.sources.base import SourceRef
from ingest.store.bulk import BulkTable, BulkWrite
from ingest.store.db import one_of
from ingest.store.events import RequestPayload, clip, event_values, request_payload
from ingest.store.models import (
    Base,
    Event,
    Message,
    MessageStatus,
    RawMessage,
    Recipient,
    Request,
    Response,
)

MAX_TEXT = 64 * 1024
MAX_HEADER = 998  # RFC 5322's longest line


@dataclass
class Recorded:
    """What identifies a recorded message: enough to know it when it comes again."""

    mailbox: str
    source_key: str
    content_hash: str
    message_id_header: str | None
    status: MessageStatus
    id: int | None = None  # a row this batch adds has it once the batch is written


@dataclass(kw_only=True)
class MessageRow(Recorded):
    """A ``messages`` row as the batch builds it (the column names are the field names)."""

    folder: str | None
    uidvalidity: int | None
    uid: int | None
    uidl: str | None
    filename: str | None
    size: int
    sender: str | None
    sender_verified: bool | None
    subject: str | None
    kind: MessageKind | None
    reason: str
    reasons: list[str]
    request_id: int | None
    received_at: datetime | None

    def values(self) -> dict[str, Any]:
        """The row for INSERT (its id comes from the database)."""
        return {name: getattr(self, name) for name in _COLUMNS}


@dataclass(kw_only=True)
class ResponseRow:
    """A ``responses`` row as the batch builds it (the column names are the field names)."""

    request_id: int
    recipient_id: int | None
    message: MessageRow
    mailbox: str
    address: str
    verified_address: str | None
    sender_verified: bool | None
    intent: Intent
    reply_text: str
    note: str | None
    counted: bool
    decisive: bool
    reason: str
    evidence: list[str]
    sent_at: datetime | None
    received_at: datetime
    id: int | None = None  # once the batch is written

    def values(self) -> dict[str, Any]:
        """The row for INSERT (the message's id is known by then; its own comes later)."""
        return {"message_id": self.message.id,
                **{name: getattr(self, name) for name in _RESPONSE_COLUMNS}}


def _columns(row: type[Any], *skip: str) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(row) if field.name not in skip)


_COLUMNS = _columns(MessageRow, "id")
_RESPONSE_COLUMNS = _columns(ResponseRow, "id", "message")
# Not the ORM's bulk path, nor Core's: their per-row work costs more than the rows.
_REQUESTS, _MESSAGES, _RESPONSES, _RAW, _EVENTS = (
    BulkTable(Base.metadata.tables[model.__tablename__])
    for model in (Request, Message, Response, RawMessage, Event))


class RecordedIndex:
    """Which messages of a batch are recorded already, from one query for the whole batch.

    A message is recorded when the same place (mailbox, source key) holds a row, or the
    same bytes with the same Message-ID do (a re-scan after a UIDVALIDITY change). Rows
    the batch itself adds are indexed too: a folder can hold one message twice.
    """

    def __init__(self, session: Session, arrivals: Sequence[tuple[SourceRef, str]]) -> None:
        self._by_place: dict[tuple[str, str], Recorded] = {}
        self._by_bytes: dict[tuple[str, str], list[Recorded]] = {}
        mailboxes: dict[str, list[tuple[SourceRef, str]]] = {}
        for source, digest in arrivals:
            mailboxes.setdefault(source.mailbox, []).append((source, digest))
        columns = (Message.mailbox, Message.source_key, Message.content_hash,
                   Message.message_id_header, Message.status, Message.id)
        # Two lookups rather than one OR, so each uses its own index; in one statement.
        lookups = [select(*columns).where(Message.mailbox == mailbox,
                                          one_of(session, column, values))
                   for mailbox, group in mailboxes.items()
                   for column, values in (
                       (Message.source_key, [source.source_key for source, _ in group]),
                       (Message.content_hash, [digest for _, digest in group]))]
        if not lookups:
            return
        seen: set[int] = set()
        for row in session.execute(union_all(*lookups)):
            if row.id not in seen:  # a row found by both lookups
                seen.add(row.id)
                self.add(Recorded(**row._asdict()))

    def add(self, recorded: Recorded) -> None:
        """Index a row (one found, or one this batch records)."""
        self._by_place[(recorded.mailbox, recorded.source_key)] = recorded
        same_bytes = self._by_bytes.setdefault((recorded.mailbox, recorded.content_hash), [])
        same_bytes.append(recorded)

    def find(self, source: SourceRef, digest: str, message_id: str | None) -> Recorded | None:
        """The row already recorded for this message, if any."""
        found = self._by_place.get((source.mailbox, source.source_key))
        if found is not None:
            return found
        header = clip(message_id, MAX_HEADER)
        for recorded in self._by_bytes.get((source.mailbox, digest), []):
            if not header or recorded.message_id_header == header:
                return recorded
        return None


@dataclass(frozen=True)
class _EventDraft:
    event_type: str
    message: MessageRow
    request: Request | None
    response: ResponseRow | None
    # The request as this message left it: a later reply in the batch may change it.
    request_state: RequestPayload | None


@dataclass(frozen=True)
class StoredAnswer:
    """A counted response stored before this batch, as deciding needs it (``decide.Answer``)."""

    id: int
    recipient_id: int | None
    address: str
    intent: Intent
    counted: bool


_ANSWER_COLUMNS = tuple(getattr(Response, name) for name in _columns(StoredAnswer))


class Recorder:
    """The writes of one batch, inside its transaction, in the order they were decided."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._messages: list[tuple[MessageRow, bytes | None]] = []
        self._responses: list[ResponseRow] = []
        self._events: list[_EventDraft] = []
        self._answers: dict[int, list[ResponseRow]] = {}  # this batch's, by request
        self._stored: dict[int, list[StoredAnswer]] = {}  # counted before it, by request
        self._settled: dict[int, dict[str, Any]] = {}  # the requests' new states, by id

    def message(
        self,
        source: SourceRef,
        raw: bytes,
        digest: str,
        parsed: ParsedMessage | None,
        *,
        status: MessageStatus,
        reason: str,
        reasons: list[str],
        request: Request | None = None,
        keep_raw: bool = True,
    ) -> MessageRow:
        """A row for every message seen, whatever became of it (and its bytes, to reprocess);
        ``digest`` is the bytes' ``content_hash``."""
        row = MessageRow(
            mailbox=source.mailbox,
            source_key=source.source_key,
            content_hash=digest,
            message_id_header=clip(parsed.message_id if parsed else None, MAX_HEADER),
            status=status,
            folder=source.folder,
            uidvalidity=source.uidvalidity,
            uid=source.uid,
            uidl=source.uidl,
            filename=source.filename,
            size=len(raw),
            sender=clip(parsed.sender.address if parsed else None, 320),
            sender_verified=parsed.sender.verified if parsed else None,
            subject=clip(parsed.subject if parsed else None, MAX_HEADER),
            kind=parsed.kind if parsed and not parsed.problem else None,
            reason=clip(reason, MAX_TEXT) or "",
            reasons=reasons,
            request_id=request.id if request else None,
            received_at=source.received_at,
        )
        self._messages.append((row, raw if keep_raw else None))
        return row

    def response(
        self,
        message: MessageRow,
        request: Request,
        recipient: Recipient | None,
        parsed: ParsedMessage,
        decision: Decision,
        received_at: datetime,
        evidence: list[str],
    ) -> ResponseRow:
        """The reply as an answer to ``request``, counted or not, with the reason.

        A later reply in the same batch sees it among ``answers(request)``.
        """
        sender = parsed.sender
        response = ResponseRow(
            request_id=request.id,
            recipient_id=recipient.id if recipient else None,
            message=message,
            mailbox=message.mailbox,
            address=clip(sender.address or parsed.headers.get("From", ""), 320) or "",
            verified_address=sender.address if sender.verified else None,
            sender_verified=sender.verified,
            intent=parsed.intent,
            reply_text=clip(parsed.reply_text, MAX_TEXT) or "",
            note=clip(parsed.note, MAX_TEXT),
            counted=decision.counted,
            decisive=decision.decisive,
            reason=decision.reason,
            evidence=evidence,
            sent_at=parsed.date,
            received_at=received_at,
        )
        self._responses.append(response)
        self._answers.setdefault(request.id, []).append(response)
        return response

    def load_answers(self, request_ids: Collection[int]) -> None:
        """Read the counted responses of these requests, in one query: only those count
        toward a decision, and a request answered thousands of times has a few of them."""
        if not request_ids:
            return
        query = (select(Response.request_id, *_ANSWER_COLUMNS)
                 .where(one_of(self.session, Response.request_id, request_ids),
                        Response.counted.is_(True))
                 .order_by(Response.id))
        for request_id, *answer in self.session.execute(query):
            self._stored.setdefault(request_id, []).append(StoredAnswer(*answer))

    def answers(self, request: Request) -> list[StoredAnswer | ResponseRow]:
        """The counted responses ``request`` has so far (those ``load_answers`` read), then
        every one of this batch's."""
        return [*self._stored.get(request.id, []), *self._answers.get(request.id, [])]

    def settle(self, request: Request, decision: Decision, when: datetime) -> None:
        """Move the request to its decided state (a decisive response); the UPDATE goes with
        the batch's rows. A later reply in the batch reads the new state from ``request``."""
        if decision.new_status is None:
            return
        # Set as if loaded, so the ORM's flush has nothing to do: for a batch of decided
        # requests its unit of work cost more than everything else the batch writes.
        set_committed_value(request, "status", decision.new_status)
        set_committed_value(request, "decided_at", when)
        self._settled[request.id] = {"id": request.id, "status": decision.new_status,
                                     "decided_at": when}

    def events(
        self,
        event_types: Sequence[str],
        message: MessageRow,
        request: Request | None = None,
        response: ResponseRow | None = None,
    ) -> None:
        """Events for the rules engine, written once the rows they name have ids."""
        state = request_payload(request) if request is not None else None
        self._events += [_EventDraft(event_type, message, request, response, state)
                         for event_type in event_types]

    def flush(self) -> None:
        """Write everything added so far; afterwards every row has its id."""
        messages = [row for row, _ in self._messages]
        (BulkWrite()
         .updates(_REQUESTS, list(self._settled.values()))  # decided by the batch's replies
         .keyed(_MESSAGES, messages)
         .keyed(_RESPONSES, self._responses)  # their values name their messages' ids
         .rows(_RAW, lambda: [{"message_id": row.id, "raw": raw}
                              for row, raw in self._messages if raw is not None])
         .rows(_EVENTS, lambda: [self._event_values(draft) for draft in self._events])
         .run(self.session.connection()))
        self._settled.clear()
        self._messages.clear()
        self._responses.clear()
        self._events.clear()

    @staticmethod
    def _event_values(draft: _EventDraft) -> dict[str, Any]:
        return event_values(draft.event_type, message=draft.message, request=draft.request,
                            response=draft.response, request_state=draft.request_state)
