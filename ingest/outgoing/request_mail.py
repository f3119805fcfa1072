"""The request email of ``ackmail request create --send``: one per responder, their own token.

Each email carries the responder's token three ways the correlator reads back
(``ingest.parse.tokens``): the Message-ID replies quote in In-Reply-To, the
``[TOKEN]`` subject tag, and the ``Ref: TOKEN`` footer — plus the plus-addressed
Reply-To where configured. A plain-text and an HTML part say how to answer.
Works on any objects shaped like ``ingest.register``'s (structural typing), so
this package does not depend on the ingest side.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol

from ingest.errors import AckmailError
from ingest.outgoing.smtp import Mailer, build_message
from ingest.timeutil import as_utc

log = logging.getLogger(__name__)

# How to answer, per request kind: the words the intent vocabulary reads first.
HOW_TO_ANSWER: Mapping[str, str] = {
    "approval": "Reply to this email with APPROVE or REJECT on the first line.",
    "alert": "Reply to this email with ACK on the first line to acknowledge this alert.",
}
TITLES: Mapping[str, str] = {"approval": "Approval request", "alert": "Alert"}


class RequestFacts(Protocol):
    """What the email says about the request (``ingest.register.RegisteredRequest``)."""

    @property
    def kind(self) -> str: ...
    @property
    def ref(self) -> str: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def expires_at(self) -> datetime | None: ...


class RecipientMail(Protocol):
    """What one responder's email must carry (``ingest.register.RecipientInstructions``)."""

    @property
    def address(self) -> str: ...
    @property
    def token(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def subject_tag(self) -> str: ...
    @property
    def footer(self) -> str: ...
    @property
    def subject(self) -> str | None: ...


@dataclass(frozen=True)
class SendFailure:
    """A responder whose email could not be sent, and why."""

    address: str
    error: str


def compose_request_email(
    request: RequestFacts,
    recipient: RecipientMail,
    *,
    sender: str,
    domain: str,
    reply_to: str | None = None,
) -> EmailMessage:
    """The email to one responder, with their token in Message-ID, subject and footer.

    ``reply_to`` (the watched mailbox) is used when the instructions carry no
    plus-addressed Reply-To of their own.
    """
    kind = str(request.kind)
    subject = recipient.subject or f"{TITLES.get(kind, 'Request')} {request.ref} " \
                                   f"{recipient.subject_tag}"
    lines = _body_lines(request, recipient, kind)
    headers = {k: v for k, v in recipient.headers.items() if k != "Message-ID"}
    if reply_to and "Reply-To" not in headers:
        headers["Reply-To"] = reply_to
    return build_message(
        sender=sender,
        to=[recipient.address],
        subject=subject,
        text="\n".join(lines) + "\n",
        html=_html(lines),
        message_id=recipient.headers["Message-ID"],
        domain=domain,
        headers=headers,
    )


def _body_lines(request: RequestFacts, recipient: RecipientMail, kind: str) -> list[str]:
    lines = [request.subject or f"{TITLES.get(kind, 'Request')} {request.ref}", ""]
    lines.append(HOW_TO_ANSWER.get(kind, HOW_TO_ANSWER["approval"]))
    lines += ["You may add a comment below your answer.", "", f"Reference: {request.ref}"]
    if request.expires_at is not None:
        lines.append(f"Answers are accepted until {as_utc(request.expires_at):%Y-%m-%d %H:%M} UTC.")
    lines += [
        f"Please answer from this address ({recipient.address}) and do not forward this email:",
        "only your own reply counts.",
        "",
        recipient.footer,
    ]
    return lines


def _html(lines: list[str]) -> str:
    paragraphs = "\n".join(f"<p>{html.escape(line)}</p>" for line in lines if line)
    return f"<!DOCTYPE html>\n<html><body>\n{paragraphs}\n</body></html>\n"


def send_request_emails(
    mailer: Mailer,
    request: RequestFacts,
    recipients: Sequence[RecipientMail],
    *,
    domain: str,
    reply_to: str | None,
    on_sent: Callable[[RecipientMail], None],
) -> list[SendFailure]:
    """Send every responder their email; ``on_sent`` records each success (``sent_at``)."""
    failures = []
    for recipient in recipients:
        message = compose_request_email(request, recipient, sender=mailer.sender, domain=domain,
                                        reply_to=reply_to)
        try:
            mailer.send(message)
        except AckmailError as exc:
            log.warning("request email to %s not sent: %s", recipient.address, exc)
            failures.append(SendFailure(recipient.address, str(exc)))
            continue
        on_sent(recipient)
    return failures
