"""Request emails: each responder's token, readable back by the parser and the correlator."""

from __future__ import annotations

import secrets
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ingest.auth import TokenProviders
from ingest.config import RequestsConfig
from ingest.config.reader import Secret
from ingest.correlate import correlate
from ingest.outgoing.request_mail import RecipientMail, compose_request_email, send_request_emails
from ingest.outgoing.smtp import Mailer
from ingest.parse.base import Intent, MessageKind, TokenSource
from ingest.parse.message import ParseOptions, parse_message
from ingest.register import NewRequest, RegisteredRequest, register_request
from ingest.store.db import read_session, transaction
from ingest.store.models import RequestKind
from tests.servers.rules_fixtures import SMTP_USER, smtp_config
from tests.servers.smtp import SmtpServer
from tests.servers.tls import TestPki

SECRET = "outgoing-test-secret"
REQUESTS = RequestsConfig(reply_address="approvals@acme.example", plus_addressing=True,
                          message_id_domain="acme.example")
ALICE, BOB = "alice@example.test", "bob@example.test"


@pytest.fixture
def registered(engine: Engine) -> RegisteredRequest:
    new = NewRequest(kind=RequestKind.APPROVAL, ref="CR-20631", responders=(ALICE, BOB),
                     subject="Laptop order", expires_in=timedelta(days=3))
    with transaction(engine) as session:
        return register_request(session, new, secret=SECRET, config=REQUESTS)


def _part(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())


def _reply_to(sent: EmailMessage, body: str) -> bytes:
    reply = EmailMessage()
    reply["From"] = sent["To"]
    reply["To"] = sent["Reply-To"]
    reply["Subject"] = f"RE: {sent['Subject']}"
    reply["Message-ID"] = "<reply-1@mail.example.test>"
    reply["In-Reply-To"] = sent["Message-ID"]
    reply["References"] = sent["Message-ID"]
    quoted = "\n".join(f"> {line}" for line in _part(sent, "plain").splitlines())
    reply.set_content(f"{body}\n\nOn Monday ackmail wrote:\n{quoted}\n")
    return reply.as_bytes()


def test_each_responder_gets_their_own_token_everywhere(
    engine: Engine, registered: RegisteredRequest, smtp_server: SmtpServer, smtp_pki: TestPki,
    tmp_path: Path,
) -> None:
    mailer = Mailer(smtp_config(smtp_server, smtp_pki),
                    TokenProviders(tmp_path, Secret(secrets.token_urlsafe(16), "t")))
    sent_to: list[str] = []

    def on_sent(recipient: RecipientMail) -> None:
        sent_to.append(recipient.address)

    failures = send_request_emails(mailer, registered, registered.recipients,
                                   domain="acme.example", reply_to=None, on_sent=on_sent)

    assert failures == [] and sent_to == [ALICE, BOB]
    for instructions, mail in zip(registered.recipients, smtp_server.received, strict=True):
        message = mail.message()
        token = instructions.token
        assert mail.rcpt_tos == (instructions.address,)
        assert message["From"] == SMTP_USER
        assert message["Message-ID"] == instructions.headers["Message-ID"]
        assert message["Reply-To"] == f"approvals+{token}@acme.example"
        assert message["Subject"] == f"Laptop order [{token}]"
        assert message["X-Ackmail"] and message["Auto-Submitted"] is None
        text, html = _part(message, "plain"), _part(message, "html")
        assert "APPROVE or REJECT" in text and "APPROVE or REJECT" in html
        assert text.rstrip().endswith(f"Ref: {token}") and f"Ref: {token}" in html
        parsed = parse_message(mail.data, ParseOptions())
        assert {(c.token, c.source) for c in parsed.tokens} == {
            (token, TokenSource.SUBJECT), (token, TokenSource.FOOTER)}


def test_a_reply_to_the_sent_email_finds_its_request_and_intent(
    engine: Engine, registered: RegisteredRequest,
) -> None:
    alice = registered.recipients[0]
    sent = compose_request_email(registered, alice, sender=SMTP_USER, domain="acme.example")

    parsed = parse_message(_reply_to(sent, "Approved, go ahead."),
                           ParseOptions(reply_address=REQUESTS.reply_address))

    assert (parsed.kind, parsed.intent) == (MessageKind.REPLY, Intent.APPROVE)
    assert parsed.tokens[0].source == TokenSource.HEADERS
    with read_session(engine) as session:
        [found] = correlate(session, [parsed], secret=SECRET)
        assert found.request is not None and found.request.id == registered.id
        assert found.recipient is not None and found.recipient.address == ALICE


def test_an_alert_asks_for_ack_and_the_watched_mailbox_gets_replies(
    engine: Engine,
) -> None:
    new = NewRequest(kind=RequestKind.ALERT, ref="INC-7", responders=(ALICE,))
    with transaction(engine) as session:
        alert = register_request(session, new, secret=SECRET, config=RequestsConfig())
    [instructions] = alert.recipients

    message = compose_request_email(alert, instructions, sender=SMTP_USER,
                                    domain="acme.example", reply_to="oncall@acme.example")

    assert message["Subject"] == f"Alert INC-7 [{instructions.token}]"
    assert message["Reply-To"] == "oncall@acme.example"
    assert "with ACK on the first line" in _part(message, "plain")


def test_a_failed_send_is_reported_and_not_recorded(
    registered: RegisteredRequest, smtp_server: SmtpServer, smtp_pki: TestPki, tmp_path: Path,
) -> None:
    mailer = Mailer(smtp_config(smtp_server, smtp_pki),
                    TokenProviders(tmp_path, Secret(secrets.token_urlsafe(16), "t")))
    smtp_server.fail_next(1, "550 5.1.1 Mailbox unavailable")
    sent_to: list[str] = []

    failures = send_request_emails(mailer, registered, registered.recipients,
                                   domain="acme.example", reply_to=None,
                                   on_sent=lambda r: sent_to.append(r.address))

    assert [f.address for f in failures] == [ALICE] and "550" in failures[0].error
    assert sent_to == [BOB]
