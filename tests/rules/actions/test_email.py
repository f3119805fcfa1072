"""The email action with the real SMTP server: templates, loop guards, the hourly limit."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ingest.auth import TokenProviders
from ingest.config.reader import Secret
from ingest.errors import PermanentError
from ingest.parse.base import MessageKind
from ingest.parse.message import ParseOptions, parse_message
from ingest.store.db import transaction
from ingest.store.models import Event, Outcome, OutcomeStatus
from ingest.timeutil import utcnow
from rules.actions.email import EmailAction
from rules.base import ActionEnvironment, Delivery
from rules.fields import event_fields
from rules.params import Params
from tests.servers.rules_fixtures import smtp_config
from tests.servers.smtp import SmtpServer
from tests.servers.tls import TestPki

ALICE = "alice@example.test"


def _payload(kind: str = "reply", message_id: str = "<r1@mail.example.test>") -> dict[str, Any]:
    return {
        "event": "response.recorded",
        "request": {"id": 4, "ref": "CR-20631", "status": "pending"},
        "response": {"address": ALICE, "intent": "unknown", "reply_text": "hmm"},
        "message": {"id": 8, "kind": kind, "message_id": message_id,
                    "subject": "RE: Laptop order [R7K2-9QXM]", "sender": ALICE},
    }


@pytest.fixture
def action(smtp_server: SmtpServer, smtp_pki: TestPki, engine: Engine,
           tmp_path: Path) -> EmailAction:
    providers = TokenProviders(tmp_path / "state", Secret(secrets.token_urlsafe(16), "t"))
    env = ActionEnvironment(smtp=smtp_config(smtp_server, smtp_pki), providers=providers,
                            engine=engine, message_id_domain="acme.example")
    return EmailAction(env)


def _prepared(action: EmailAction, **params: Any) -> dict[str, Any]:
    values = {"to": ["${response.address}"], "subject": "Re: ${message.subject}",
              "body": "We could not read a decision about ${request.ref}.\nCost: $$5\n"} | params
    reader = Params(values, fields=event_fields("response.recorded"), base_dir=Path("."))
    prepared = action.prepare(reader)
    reader.finish()
    assert reader.problems == []
    return prepared


def _deliver(action: EmailAction, params: dict[str, Any], payload: dict[str, Any],
             outcome_id: int = 1) -> dict[str, Any]:
    return action.deliver(Delivery(outcome_id, 1, "response.recorded", "did-you-mean",
                                   payload, params))


def test_a_templated_answer_to_the_responder(action: EmailAction,
                                             smtp_server: SmtpServer) -> None:
    result = _deliver(action, _prepared(action), _payload())

    [message] = smtp_server.messages()
    assert result["recipients"] == [ALICE] and result["rate_limited"] == []
    assert result["server"].endswith(f":{smtp_server.port}")
    assert message["To"] == ALICE and message["Subject"] == "Re: RE: Laptop order [R7K2-9QXM]"
    body = message.get_content().replace("\r\n", "\n")
    assert body == "We could not read a decision about CR-20631.\nCost: $5\n"
    assert message["Auto-Submitted"] == "auto-replied" and message["X-Ackmail"]
    assert message["In-Reply-To"] == "<r1@mail.example.test>"
    assert message["Message-ID"] == result["message_id"]
    assert message["Message-ID"].endswith("@acme.example>")
    # If it ever comes back, ingest reads it as an automatic reply, not a decision.
    assert parse_message(message.as_bytes(), ParseOptions()).kind == MessageKind.AUTO_REPLY


@pytest.mark.parametrize("payload", [
    _payload(kind="auto_reply"), _payload(kind="bounce"), _payload(kind="receipt"),
    _payload(message_id="<ackmail.R7K2-9QXM.5f3a@acme.example>"),
])
def test_never_an_answer_to_a_machine_or_to_itself(
    action: EmailAction, smtp_server: SmtpServer, payload: dict[str, Any]
) -> None:
    with pytest.raises(PermanentError, match=r"not sent: .*ackmail never answer"):
        _deliver(action, _prepared(action), payload)
    assert smtp_server.received == []


def test_fixed_recipients_are_told_even_about_automatic_messages(
    action: EmailAction, smtp_server: SmtpServer
) -> None:
    params = _prepared(action, to=["ops@example.test", "OPS@example.test"])
    _deliver(action, params, _payload(kind="bounce"))
    assert [m.rcpt_tos for m in smtp_server.received] == [("ops@example.test",)]
    assert "In-Reply-To" not in smtp_server.messages()[0]


def test_a_template_that_gives_no_address_is_permanent(
    action: EmailAction, smtp_server: SmtpServer
) -> None:
    payload = _payload()
    payload["response"]["address"] = None
    with pytest.raises(PermanentError, match="no recipient address"):
        _deliver(action, _prepared(action), payload)


def _delivered_to(engine: Engine, address: str, count: int, *, hours_ago: float = 0) -> None:
    when = utcnow() - timedelta(hours=hours_ago)
    with transaction(engine) as session:
        event = Event(type="response.recorded", payload={})
        session.add(event)
        session.flush()
        for _ in range(count):
            session.add(Outcome(event_id=event.id, rule="r", action="email", params={
                "result": {"recipients": [address]}}, status=OutcomeStatus.DELIVERED,
                delivered_at=when))


def test_the_hourly_limit_counts_delivered_notifications(
    action: EmailAction, smtp_server: SmtpServer, engine: Engine
) -> None:
    _delivered_to(engine, ALICE, 2)
    _delivered_to(engine, "ops@example.test", 5, hours_ago=2)  # older than an hour
    params = _prepared(action, to=["${response.address}", "ops@example.test"], max_per_hour=2)

    result = _deliver(action, params, _payload())

    assert (result["recipients"], result["rate_limited"]) == (["ops@example.test"], [ALICE])
    assert [m.rcpt_tos for m in smtp_server.received] == [("ops@example.test",)]
    _delivered_to(engine, "ops@example.test", 2)
    with pytest.raises(PermanentError, match="already got 2 notifications in the last hour"):
        _deliver(action, params, _payload())


def test_prepare_needs_smtp_and_checks_recipients() -> None:
    params = Params({"to": ["ops@example.test", "nobody", "${response.adress}"],
                     "subject": "s", "body": "b"}, fields=event_fields("response.recorded"),
                    base_dir=Path("."))
    EmailAction(ActionEnvironment()).prepare(params)
    messages = [message for _, message in params.problems]
    assert "needs an [smtp] table" in messages[0]
    assert "'nobody', which is not an email address" in messages[1]
    assert "did you mean 'response.address'" in messages[2]
