"""The ack database: requests, recipients, messages, responses, checkpoints, events, outcomes,
and the leases that share mailboxes between pollers.

Invariants live in the schema, not only in Python: a message's source identity
(mailbox + source key) is unique, a token is unique, a message yields at most
one response. Every timestamp is timezone-aware UTC (see ``UTCDateTime``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ingest.parse.base import Intent, MessageKind
from ingest.store.statuses import MessageStatus as MessageStatus
from ingest.store.statuses import OutcomeStatus as OutcomeStatus
from ingest.store.statuses import RequestKind as RequestKind
from ingest.store.statuses import RequestStatus as RequestStatus
from ingest.store.types import UTCDateTime, str_enum
from ingest.timeutil import utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


Timestamp = Annotated[datetime, mapped_column(UTCDateTime())]
CreatedAt = Annotated[datetime, mapped_column(UTCDateTime(), default=utcnow)]
Address = Annotated[str, mapped_column(String(320))]
MailboxName = Annotated[str, mapped_column(String(100))]
JsonList = Annotated[list[Any], mapped_column(JSON, default=list)]
JsonDict = Annotated[dict[str, Any], mapped_column(JSON, default=dict)]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Request(Base):
    """Something awaiting a decision: an approval or an alert, with its responders."""

    __tablename__ = "requests"
    # (created_at, id) is the requests listing's order: its pages are index-only scans.
    __table_args__ = (Index(None, "status", "created_at"), Index(None, "created_at", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RequestKind] = mapped_column(str_enum(RequestKind, "request_kind"))
    ref: Mapped[str] = mapped_column(String(200), index=True)
    subject: Mapped[str | None] = mapped_column(String(998))
    status: Mapped[RequestStatus] = mapped_column(
        str_enum(RequestStatus, "request_status"), default=RequestStatus.PENDING
    )
    policy: Mapped[str] = mapped_column(String(16), default="any")
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[Timestamp | None] = mapped_column(index=True)
    decided_at: Mapped[Timestamp | None]

    recipients: Mapped[list[Recipient]] = relationship(
        back_populates="request", order_by="Recipient.id", passive_deletes=True
    )
    responses: Mapped[list[Response]] = relationship(
        back_populates="request", order_by="Response.id", passive_deletes=True
    )


class Recipient(Base):
    """One allowed responder of a request, with the token only their email carries."""

    __tablename__ = "recipients"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    address: Mapped[Address]
    token: Mapped[str] = mapped_column(String(16), unique=True)
    token_nonce: Mapped[str] = mapped_column(String(32))
    outgoing_message_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[CreatedAt]
    sent_at: Mapped[Timestamp | None]

    request: Mapped[Request] = relationship(back_populates="recipients")


class Message(Base):
    """Every message seen in a mailbox, whether it was used or not, and why."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("mailbox", "source_key"),
        Index(None, "status", "recorded_at"),
        Index(None, "mailbox", "recorded_at"),
        # The second identity (after a UIDVALIDITY change): both columns, or SQLite's
        # planner scans the mailbox through its (mailbox, recorded_at) index instead.
        Index(None, "mailbox", "content_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[MailboxName]
    source_key: Mapped[str] = mapped_column(String(500))
    folder: Mapped[str | None] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    uidl: Mapped[str | None] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(255))
    message_id_header: Mapped[str | None] = mapped_column(String(998), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(default=0)
    sender: Mapped[str | None] = mapped_column(String(320))
    sender_verified: Mapped[bool | None]
    subject: Mapped[str | None] = mapped_column(String(998))
    kind: Mapped[MessageKind | None] = mapped_column(str_enum(MessageKind, "message_kind"))
    status: Mapped[MessageStatus] = mapped_column(str_enum(MessageStatus, "message_status"))
    reason: Mapped[str] = mapped_column(Text, default="")
    reasons: Mapped[JsonList]
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("requests.id", ondelete="SET NULL"), index=True
    )
    received_at: Mapped[Timestamp | None]
    recorded_at: Mapped[CreatedAt]


class RawMessage(Base):
    """A recorded message's bytes, kept for ``messages reprocess`` until retention prunes them."""

    __tablename__ = "raw_messages"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[CreatedAt] = mapped_column(index=True)


class Response(Base):
    """A reply read as an answer to a request: who, what, when, and whether it decided it."""

    __tablename__ = "responses"
    __table_args__ = (Index(None, "request_id", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    recipient_id: Mapped[int | None] = mapped_column(
        ForeignKey("recipients.id", ondelete="SET NULL")
    )
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), unique=True
    )
    mailbox: Mapped[MailboxName]
    address: Mapped[Address]
    verified_address: Mapped[str | None] = mapped_column(String(320))
    sender_verified: Mapped[bool | None]
    intent: Mapped[Intent] = mapped_column(str_enum(Intent, "intent"))
    reply_text: Mapped[str] = mapped_column(Text, default="")
    # The instruction kept with the decision ("…, but please notify the on-call team").
    note: Mapped[str | None] = mapped_column(Text)
    counted: Mapped[bool] = mapped_column(default=False)
    decisive: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[JsonList]
    sent_at: Mapped[Timestamp | None]
    received_at: Mapped[Timestamp] = mapped_column(index=True)
    created_at: Mapped[CreatedAt]

    request: Mapped[Request] = relationship(back_populates="responses")


class Checkpoint(Base):
    """How far a source has read a mailbox folder (UIDVALIDITY/UID for IMAP, the delta link
    for Microsoft Graph in ``sync_token``)."""

    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("mailbox", "folder"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[MailboxName]
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int | None] = mapped_column(BigInteger)
    sync_token: Mapped[str | None] = mapped_column(Text)
    first_watched_at: Mapped[CreatedAt]
    last_poll_at: Mapped[Timestamp | None]
    last_success_at: Mapped[Timestamp | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    state: Mapped[JsonDict]


class Event(Base):
    """Something that happened, written in the same transaction as its cause.

    This is the transactional outbox between ingest and rules: ingest only
    appends events; the rules engine reads unprocessed ones and turns them into
    outcomes.
    """

    __tablename__ = "events"
    __table_args__ = (Index(None, "processed_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    # Indexed for a request's timeline, and so that deleting a message (reprocess) does
    # not scan every event to null its reference.
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("requests.id", ondelete="SET NULL"), index=True
    )
    response_id: Mapped[int | None] = mapped_column(ForeignKey("responses.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    mailbox: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[JsonDict]
    created_at: Mapped[CreatedAt]
    processed_at: Mapped[Timestamp | None]
    # Which rules fired and why each other did not, written when the rules engine took it.
    rule_trace: Mapped[list[Any] | None] = mapped_column(JSON)


class Outcome(Base):
    """One action to deliver for one event (a webhook call, an email...).

    Its id is the idempotency key the receiver sees.
    """

    __tablename__ = "outcomes"
    __table_args__ = (Index(None, "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    rule: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    params: Mapped[JsonDict]
    status: Mapped[OutcomeStatus] = mapped_column(
        str_enum(OutcomeStatus, "outcome_status"), default=OutcomeStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[CreatedAt]
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[Timestamp | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]
    delivered_at: Mapped[Timestamp | None]


class Lease(Base):
    """Which poller polls a mailbox folder (PostgreSQL, several pollers), and until when.

    A NULL holder is a free folder; an ``expires_at`` in the past (the database's clock)
    belongs to a poller that stopped renewing, and another may take it over.
    """

    __tablename__ = "leases"

    mailbox: Mapped[MailboxName] = mapped_column(primary_key=True)
    folder: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    acquired_at: Mapped[Timestamp | None]
    heartbeat_at: Mapped[Timestamp | None]
    expires_at: Mapped[Timestamp | None]


class PollerProcess(Base):
    """A running ``ackmail poll`` (PostgreSQL): how many are alive sets each one's share.

    ``mailboxes`` is a digest of the folders it polls: only pollers of the same folders
    share them out, so a poller of a few does not make the others drop folders it
    would never take.
    """

    __tablename__ = "pollers"

    holder: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    mailboxes: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[Timestamp]
    heartbeat_at: Mapped[Timestamp]
    expires_at: Mapped[Timestamp]
