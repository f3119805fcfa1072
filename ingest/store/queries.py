"""The read side ops use: requests, responses, messages, stats as rows of plain values.

Each list function returns dicts keyed by column name, newest first, with
``limit``/``offset`` paging; the CLI and the ops pages render them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import Session

from ingest.store.models import (
    Checkpoint,
    Event,
    Lease,
    Message,
    Outcome,
    OutcomeStatus,
    Recipient,
    Request,
    RequestStatus,
    Response,
)
from ingest.timeutil import utcnow

Row = dict[str, Any]
_Query = TypeVar("_Query", bound=Select)  # type: ignore[type-arg]

REQUEST_COLUMNS = (
    "id",
    "kind",
    "ref",
    "status",
    "policy",
    "subject",
    "created_at",
    "expires_at",
    "decided_at",
    "responders",
    "responses",
)
RESPONSE_COLUMNS = (
    "id",
    "request_id",
    "ref",
    "intent",
    "decisive",
    "address",
    "verified_address",
    "sender_verified",
    "reply_text",
    "note",
    "reason",
    "sent_at",
    "received_at",
    "mailbox",
    "message_id",
)
MESSAGE_COLUMNS = (
    "id",
    "mailbox",
    "source_key",
    "message_id_header",
    "sender",
    "subject",
    "kind",
    "status",
    "reason",
    "request_id",
    "received_at",
    "recorded_at",
)


@dataclass(frozen=True)
class Page:
    """Which slice of a listing to return."""

    limit: int = 100
    offset: int = 0


def glob_to_like(pattern: str) -> str:
    """Turn a shell glob (``CR-*``) into a LIKE pattern; LIKE's own wildcards are escaped."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _paged(query: _Query, page: Page) -> _Query:
    return query.limit(page.limit).offset(page.offset)


def list_requests(
    session: Session,
    *,
    status: str | None = None,
    ref: str | None = None,
    since: datetime | None = None,
    page: Page = Page(),
) -> list[Row]:
    """Requests with their responder and response counts, newest first."""
    responders = (
        select(func.count())
        .select_from(Recipient)
        .where(Recipient.request_id == Request.id)
        .scalar_subquery()
    )
    responses = (
        select(func.count())
        .select_from(Response)
        .where(Response.request_id == Request.id)
        .scalar_subquery()
    )
    conditions: list[ColumnElement[bool]] = []
    if status:
        conditions.append(Request.status == RequestStatus(status))
    if ref:
        conditions.append(Request.ref.like(glob_to_like(ref), escape="\\"))
    if since:
        conditions.append(Request.created_at >= since)
    newest = (Request.created_at.desc(), Request.id.desc())
    # Page first, count after: the counts are then made for the page's rows only, not
    # for every row an OFFSET skips.
    on_page = _paged(select(Request.id).where(*conditions).order_by(*newest), page).subquery()
    query = (
        select(Request, responders.label("responders"), responses.label("responses"))
        .join(on_page, on_page.c.id == Request.id)
        .order_by(*newest)
    )
    return [
        {
            **_columns(request, REQUEST_COLUMNS[:-2]),
            "responders": n_recipients,
            "responses": n_responses,
        }
        for request, n_recipients, n_responses in session.execute(query)
    ]


def list_responses(
    session: Session,
    *,
    since: datetime | None = None,
    intent: str | None = None,
    request_id: int | None = None,
    mailbox: str | None = None,
    page: Page = Page(),
) -> list[Row]:
    """Recorded responses (acks), newest first, with the request's reference."""
    query = select(Response, Request.ref).join(Request, Request.id == Response.request_id)
    conditions: list[ColumnElement[bool]] = []
    if since:
        conditions.append(Response.received_at >= since)
    if intent:
        conditions.append(Response.intent == intent)
    if request_id is not None:
        conditions.append(Response.request_id == request_id)
    if mailbox:
        conditions.append(Response.mailbox == mailbox)
    query = query.where(*conditions).order_by(Response.received_at.desc(), Response.id.desc())
    return [
        {**_columns(response, RESPONSE_COLUMNS), "ref": ref}
        for response, ref in session.execute(_paged(query, page))
    ]


def list_messages(
    session: Session,
    *,
    status: str | None = None,
    mailbox: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    page: Page = Page(),
) -> list[Row]:
    """Every message seen, newest first, with why it was or was not used."""
    conditions: list[ColumnElement[bool]] = []
    if status:
        conditions.append(Message.status == status)
    if mailbox:
        conditions.append(Message.mailbox == mailbox)
    if kind:
        conditions.append(Message.kind == kind)
    if since:
        conditions.append(Message.recorded_at >= since)
    query = (
        select(Message).where(*conditions).order_by(Message.recorded_at.desc(), Message.id.desc())
    )
    return [_columns(message, MESSAGE_COLUMNS) for message in session.scalars(_paged(query, page))]


def _columns(obj: Any, names: tuple[str, ...]) -> Row:
    return {name: getattr(obj, name) for name in names if hasattr(obj, name)}


def _live_lease(now: datetime) -> ColumnElement[bool]:
    """The lease of a checkpoint's folder, while its poller renews it (several pollers)."""
    return and_(Lease.mailbox == Checkpoint.mailbox, Lease.folder == Checkpoint.folder,
                Lease.expires_at > now)


def stats(session: Session) -> dict[str, Any]:
    """Counts per mailbox and status, poll lag, oldest pending request, outbox backlog."""
    now = utcnow()
    messages = [
        {"mailbox": mailbox, "status": status, "count": count}
        for mailbox, status, count in session.execute(
            select(Message.mailbox, Message.status, func.count())
            .group_by(Message.mailbox, Message.status)
            .order_by(Message.mailbox, Message.status)
        )
    ]
    polls = [
        {
            "mailbox": cp.mailbox,
            "folder": cp.folder,
            "last_success_at": cp.last_success_at,
            "lag_seconds": round((now - cp.last_success_at).total_seconds())
            if cp.last_success_at
            else None,
            "last_error": cp.last_error,
            "holder": holder,
        }
        for cp, holder in session.execute(
            select(Checkpoint, Lease.holder)
            .outerjoin(Lease, _live_lease(now))
            .order_by(Checkpoint.mailbox, Checkpoint.folder)
        )
    ]
    oldest = session.scalar(
        select(func.min(Request.created_at)).where(Request.status == RequestStatus.PENDING)
    )
    outbox = dict(
        session.execute(select(Outcome.status, func.count()).group_by(Outcome.status)).all()
    )
    return {
        "messages": messages,
        "mailboxes": polls,
        "requests": dict(
            session.execute(select(Request.status, func.count()).group_by(Request.status)).all()
        ),
        "oldest_pending_request_at": oldest,
        "outbox": {status.value: outbox.get(status, 0) for status in OutcomeStatus},
        "events_unprocessed": session.scalar(
            select(func.count()).select_from(Event).where(Event.processed_at.is_(None))
        ),
    }
