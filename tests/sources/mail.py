"""Messages and requests for the source and poller tests."""

from __future__ import annotations

import itertools
from datetime import timedelta

from sqlalchemy import Engine, func, select

from ingest.config import RequestsConfig
from ingest.register import NewRequest, RegisteredRequest, register_request
from ingest.store.db import read_session, transaction
from ingest.store.models import Event, Message, RequestKind

SECRET = "sources-test-secret"
ALICE = "alice@example.test"
_serial = itertools.count(1)
# About 2.5 KB, like a real reply with its quoted history.
FILLER = "".join(f"> line {n} of the quoted request, kept as it was sent.\r\n" for n in range(40))


def request_for(engine: Engine, *responders: str, ref: str = "CR-1") -> RegisteredRequest:
    """A pending approval request with one token per responder."""
    with transaction(engine) as session:
        return register_request(
            session,
            NewRequest(RequestKind.APPROVAL, ref, responders or (ALICE,), "Deploy",
                       timedelta(days=1)),
            secret=SECRET, config=RequestsConfig())


def reply(token: str, *, body: str = "Approved.", sender: str = ALICE) -> bytes:
    """A reply that answers the request carrying ``token``."""
    n = next(_serial)
    return (
        f"From: {sender}\r\nTo: approvals@example.test\r\nSubject: RE: Deploy [{token}]\r\n"
        f"Message-ID: <reply.{n}@mail.example.test>\r\n"
        f"Date: Mon, 2 Nov 2026 10:04:00 +0000\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n\r\n> Please reply APPROVE or REJECT.\r\n> Ref: {token}\r\n{FILLER}"
    ).encode()


def unrelated(label: str = "") -> bytes:
    """A new message answering nothing (ignored, unless quarantined for its size)."""
    n = next(_serial)
    return (
        f"From: someone@example.test\r\nTo: approvals@example.test\r\n"
        f"Subject: Lunch {label}{n}\r\nMessage-ID: <new.{n}@mail.example.test>\r\n"
        "Date: Mon, 2 Nov 2026 11:00:00 +0000\r\n\r\n"
        f"Anyone for lunch? ({label}{n})\r\n{FILLER}"
    ).encode()


def message_count(engine: Engine) -> int:
    with read_session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Message)) or 0)


def source_keys(engine: Engine) -> list[str]:
    with read_session(engine) as session:
        return list(session.scalars(select(Message.source_key).order_by(Message.id)))


def event_types(engine: Engine) -> list[str]:
    with read_session(engine) as session:
        return list(session.scalars(select(Event.type).order_by(Event.id)))
