"""Requests, replies and lookups shared by the pipeline tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from ingest.parse.message import ParseOptions
from ingest.pipeline import Arrival, PipelineConfig, Processed, process_message
from ingest.sources.base import SourceRef
from ingest.store.db import read_session
from ingest.store.models import Event, Request, RequestStatus

SECRET = "pipeline-test-secret"
CONFIG = PipelineConfig(ParseOptions(), SECRET)
ALICE, BOB = "alice@example.test", "bob@example.test"


def reply(
    token: str,
    *,
    sender: str = ALICE,
    body: str = "Approved.",
    subject: str | None = None,
    headers: str = "",
) -> bytes:
    subject = subject or f"RE: Expense claim [{token}]"
    return (
        f"From: {sender}\r\nTo: approvals@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{abs(hash((token, sender, body, subject)))}@mail.example.test>\r\n"
        f"In-Reply-To: <ackmail.{token}.5f3a9c21@approvals.example.test>\r\n"
        f"Date: Mon, 2 Nov 2026 10:04:00 +0000\r\n{headers}"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\r\n"
        f"> Please reply APPROVE or REJECT.\r\n> Ref: {token}\r\n"
    ).encode()


def process(engine: Engine, where: SourceRef, raw: bytes, **options: Any) -> Processed:
    return process_message(engine, CONFIG, Arrival(where, raw), **options)


def source(n: int) -> SourceRef:
    return SourceRef(
        mailbox="approvals", source_key=f"imap:INBOX:1:{n}", folder="INBOX", uidvalidity=1, uid=n
    )


def events(engine: Engine) -> list[str]:
    with read_session(engine) as session:
        return list(session.scalars(select(Event.type).order_by(Event.id)))


def request_status(engine: Engine, request_id: int) -> RequestStatus:
    with read_session(engine) as session:
        return session.get_one(Request, request_id).status
