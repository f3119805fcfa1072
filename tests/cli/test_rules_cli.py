"""``rules check``, ``rules test``, ``dispatch``, ``outcomes`` and ``request create --send``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ingest.parse.message import ParseOptions
from ingest.pipeline import Arrival, PipelineConfig, process_message
from ingest.sources.base import SourceRef
from ingest.store.db import make_engine, read_session
from ingest.store.models import Event, Message, Recipient, Request
from tests.cli.conftest import Result, Run
from tests.servers.http_receiver import HttpReceiver
from tests.servers.rules_fixtures import SMTP_PASSWORD, SMTP_USER, WEBHOOK_SECRET
from tests.servers.smtp import SmtpServer
from tests.servers.tls import TestPki

ALICE = "alice@example.test"
TOKEN_SECRET = "cli-token-secret"

RULES = """\
[[rule]]
name = "tell-the-change-system"
on = ["request.approved", "request.rejected"]
when = {{ ref = "CR-*" }}

[[rule.action]]
type = "webhook"
url = "{url}/hooks"
secret = {{ env = "HOOK_SECRET" }}
max_attempts = 1

[[rule]]
name = "did-you-mean"
on = ["response.recorded"]
when = {{ "response.intent" = "unknown" }}

[[rule.action]]
type = "email"
to = ["${{response.address}}"]
subject = "Re: ${{message.subject}}"
body = "Please answer APPROVE or REJECT."

[[rule]]
name = "strangers"
on = ["message.unmatched"]

[[rule.action]]
type = "log"
"""


@dataclass(frozen=True)
class Install:
    """A configured installation; calling it runs ``ackmail --config ... ARGS``."""

    run: Run
    config: Path
    env: dict[str, str]

    def __call__(self, *args: str) -> Result:
        return self.run("--config", str(self.config), *args, env=self.env)


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    return {"TEST_TOKEN_SECRET": TOKEN_SECRET, "TEST_CACHE_KEY": "cli-cache-key-0123456789",
            "TEST_SMTP_PASSWORD": SMTP_PASSWORD, "HOOK_SECRET": WEBHOOK_SECRET,
            "ACKMAIL_DATABASE_URL": db_url}


@pytest.fixture
def cli(run: Run, tmp_path: Path, env: dict[str, str], http_receiver: HttpReceiver,
        smtp_server: SmtpServer, smtp_pki: TestPki) -> Install:
    """An installation: database, keys, SMTP, rules."""
    config = tmp_path / "ackmail.toml"
    config.write_text(f"""
[security]
token_secret = {{ env = "TEST_TOKEN_SECRET" }}
cache_key = {{ env = "TEST_CACHE_KEY" }}

[requests]
reply_address = "approvals@acme.example"
plus_addressing = true
message_id_domain = "acme.example"

[rules]
file = "rules.toml"

[smtp]
host = "127.0.0.1"
port = {smtp_server.port}
security = "starttls"
auth = "basic"
username = "{SMTP_USER}"
password = {{ env = "TEST_SMTP_PASSWORD" }}
from_address = "{SMTP_USER}"
ca_file = "{smtp_pki.ca_pem}"
""")
    (tmp_path / "rules.toml").write_text(RULES.format(url=http_receiver.url))
    install = Install(run, config, env)
    assert install("db", "upgrade").code == 0
    return install


def test_rules_check_lists_the_rules(cli: Install) -> None:
    result = cli("rules", "check")
    assert result.code == 0, result.err
    assert "3 rule(s), all valid" in result.out
    assert "1. tell-the-change-system (line 1): on request.approved, request.rejected -> " \
           "webhook" in result.out


def test_rules_check_names_file_and_line_for_every_problem(
    cli: Install, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nname = "x"\non = ["request.aproved"]\n\n[[rule.action]]\n'
                   'type = "webhook"\nurl = "file:///etc/passwd"\n')

    result = cli("rules", "check", str(bad))

    assert result.code == 1 and result.out == ""
    lines = result.err.splitlines()
    assert lines[0].startswith(f"{bad}:3: event type 'request.aproved' is not known")
    assert lines[1].startswith(f"{bad}:7: webhook action: url must be an http://")
    assert lines[2] == (f"ackmail: {bad}: 2 problem(s); fix them and run 'ackmail rules "
                        "check' again")


def test_rules_check_without_a_rules_file_says_how_to_set_one(run: Run, tmp_path: Path) -> None:
    config = tmp_path / "ackmail.toml"
    config.write_text("")
    result = run("--config", str(config), "rules", "check")
    assert result.code == 1 and "[rules] file is not set" in result.err


def _create_request(cli: Install, *extra: str) -> Result:
    return cli("request", "create", "--kind", "approval", "--ref", "CR-20631",
               "--responder", ALICE, "--subject", "Laptop order", *extra)


def _reply(token: str, body: str) -> bytes:
    reply = EmailMessage()
    reply["From"] = ALICE
    reply["To"] = f"approvals+{token}@acme.example"
    reply["Subject"] = f"RE: Laptop order [{token}]"
    reply["Message-ID"] = "<reply-77@mail.example.test>"
    reply["In-Reply-To"] = f"<ackmail.{token}.0a1b2c@acme.example>"
    reply.set_content(f"{body}\n\n> Reply APPROVE or REJECT.\n> Ref: {token}\n")
    return reply.as_bytes()


def test_rules_test_shows_what_fires_and_why_not_without_recording(
    cli: Install, tmp_path: Path, db_url: str
) -> None:
    created = _create_request(cli)
    token = json.loads(created.out)["recipients"][0]["token"]
    message = tmp_path / "reply.eml"
    message.write_bytes(_reply(token, "Approved."))

    result = cli("rules", "test", str(message))

    assert result.code == 0, result.err
    out = result.out
    assert re.search(r"reply from alice@example.test, intent approve, request #\d+ \(CR-20631\)",
                     out)
    assert "event response.recorded:\n" in out and "event request.approved:\n" in out
    approved = out.split("event request.approved:\n")[1]
    assert "FIRES  tell-the-change-system -> webhook  (request.ref 'CR-20631' matches " \
           "'CR-*')" in approved
    assert "no     did-you-mean: listens to response.recorded, not request.approved" in approved
    recorded = out.split("event response.recorded:\n")[1].split("event ")[0]
    assert "no     did-you-mean: response.intent 'approve' NOT equals 'unknown'" in recorded
    engine = make_engine(db_url)
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        assert session.scalar(select(func.count()).select_from(Event)) == 0
        assert {r.status for r in session.scalars(select(Request))} == {"pending"}
    engine.dispose()


def test_rules_test_on_an_unmatched_message(cli: Install, tmp_path: Path) -> None:
    message = tmp_path / "new.eml"
    message.write_bytes(b"From: bob@example.test\r\nTo: approvals@acme.example\r\n"
                        b"Subject: hello\r\nMessage-ID: <n1@example.test>\r\n\r\nHi there\r\n")
    result = cli("rules", "test", str(message))
    assert result.code == 0, result.err
    assert "not an answer to any request" in result.out
    assert "event message.unmatched:\n  no     tell-the-change-system" in result.out
    assert "  FIRES  strangers -> log  (no conditions)" in result.out


def test_dispatch_delivers_and_outcomes_list_and_retry(
    cli: Install, db_url: str, http_receiver: HttpReceiver, smtp_server: SmtpServer
) -> None:
    created = json.loads(_create_request(cli).out)
    token = created["recipients"][0]["token"]
    engine = make_engine(db_url)
    config = PipelineConfig(ParseOptions(reply_address="approvals@acme.example"), TOKEN_SECRET)
    for n, body in enumerate(("Hmm, what is this?", "Approved.")):
        source = SourceRef(mailbox="approvals", source_key=f"test:{n}")
        process_message(engine, config, Arrival(source, _reply(token, body).replace(
            b"reply-77", f"reply-{n}".encode())))
    engine.dispose()
    http_receiver.answer_next(500)

    first = cli("dispatch", "--once")

    assert first.code == 1 and "1 outcome(s) failed for good" in first.err
    assert "events processed: 3; outcomes delivered: 1, to retry: 0, dead: 1" in first.out
    rows = json.loads(cli("outcomes", "list", "--format", "json").out)
    by_rule = {row["rule"]: row for row in rows}
    assert by_rule["tell-the-change-system"]["status"] == "dead"
    assert "HTTP 500" in by_rule["tell-the-change-system"]["last_error"]
    assert by_rule["did-you-mean"]["status"] == "delivered"
    assert [m["To"] for m in smtp_server.messages()] == [ALICE]
    dead_id = by_rule["tell-the-change-system"]["id"]

    assert cli("outcomes", "retry", str(dead_id)).code == 0
    again = cli("outcomes", "retry", str(dead_id))
    assert again.code == 1 and "is pending, not dead" in again.err
    assert cli("dispatch", "--once").code == 0
    table = cli("outcomes", "list", "--status", "delivered").out
    assert "tell-the-change-system" in table and "did-you-mean" in table
    assert http_receiver.keys() == {str(dead_id): 2}
    missing = cli("outcomes", "retry", "99999")
    assert missing.code == 1 and "there is no outcome #99999" in missing.err


def test_request_create_send_mails_every_responder(
    cli: Install, db_url: str, smtp_server: SmtpServer
) -> None:
    result = cli("request", "create", "--kind", "alert", "--ref", "INC-9",
                  "--responder", ALICE, "--responder", "bob@example.test", "--send")

    assert result.code == 0, result.err
    created = json.loads(result.out)
    assert all(r["sent_at"] and r["sent_at"].endswith("Z") for r in created["recipients"])
    received = {m["To"]: m for m in smtp_server.messages()}
    for recipient in created["recipients"]:
        message = received[recipient["address"]]
        assert message["Message-ID"] == recipient["headers"]["Message-ID"]
        assert message["Reply-To"] == recipient["headers"]["Reply-To"]
        assert recipient["subject_tag"] in message["Subject"]
    engine = make_engine(db_url)
    with read_session(engine) as session:
        assert all(r.sent_at is not None for r in session.scalars(select(Recipient)))
    engine.dispose()


def test_request_create_send_without_smtp_registers_nothing(
    run: Run, tmp_path: Path, db_url: str, env: dict[str, str]
) -> None:
    config = tmp_path / "nosmtp.toml"
    config.write_text('[security]\ntoken_secret = { env = "TEST_TOKEN_SECRET" }\n')
    bare = Install(run, config, env)
    assert bare("db", "upgrade").code == 0

    result = _create_request(bare, "--send")

    assert result.code == 1 and "--send needs an [smtp] table" in result.err
    engine = make_engine(db_url)
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Request)) == 0
    engine.dispose()


def test_a_failed_send_exits_1_but_keeps_the_request(
    cli: Install, smtp_server: SmtpServer
) -> None:
    smtp_server.fail_next(1, "550 5.1.1 Mailbox unavailable")
    result = _create_request(cli, "--send")
    assert result.code == 1
    assert json.loads(result.out)["recipients"][0]["sent_at"] is None
    assert f"the email to {ALICE} was not sent" in result.err and "550" in result.err
    assert "is registered" in result.err


def test_dispatch_refuses_a_bad_rules_file_at_start(cli: Install, tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text('[[rule]]\nname = "x"\non = ["request.approved"]\n'
                                         '[[rule.action]]\ntype = "sms"\n')
    result = cli("dispatch", "--once")
    assert result.code == 1 and result.out == ""
    assert f"{tmp_path / 'rules.toml'}:5: action type 'sms' is not known" in result.err
