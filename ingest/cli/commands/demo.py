"""``ackmail demo``: the whole pipeline on the embedded default, with no server or account.

A temporary SQLite database and Maildir, five requests, eight realistic replies
(approve, reject, ack, a German approval, an out-of-office, a bounce, a forwarded
reply from a spoofed sender, an unknown token), then the real ``poll --once`` on the
Maildir source and the real dispatcher: rules with a ``log`` action and a webhook to
a loopback receiver. It prints the decisions and what was ignored, and why.
"""

from __future__ import annotations

import argparse
import logging
import string
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.cli.context import CommandContext
from ingest.cli.output import render
from ingest.config import Settings
from ingest.store.statuses import RequestKind
from ingest.timeutil import parse_duration, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ingest.cli.demo_receiver import DemoReceiver
    from ingest.poller.service import Poller
    from ingest.register import RegisteredRequest

REPLY_TO = "approvals@example.com"


@dataclass(frozen=True)
class DemoRequest:
    """A request the demo registers, and the reply file(s) that answer it."""

    ref: str
    kind: RequestKind
    responder: str
    subject: str
    replies: tuple[str, ...]


# Each row: a request, and which of templates/demo/*.eml answer it.
REQUESTS = (
    DemoRequest("CR-1001", RequestKind.APPROVAL, "alice@example.com", "Purchase order: 12 laptops",
                ("01-approve-outlook.eml",)),
    DemoRequest("CR-1002", RequestKind.APPROVAL, "bob@example.com",
                "Change request: database failover test", ("02-reject-gmail.eml",)),
    DemoRequest("INC-2001", RequestKind.ALERT, "oncall@example.com", "Disk 92% full on db-01",
                ("03-ack-iphone.eml",)),
    DemoRequest("CR-1003", RequestKind.APPROVAL, "dieter@example.de", "Urlaubsantrag 24.-31.12.",
                ("04-approve-german.eml",)),
    DemoRequest("CR-1004", RequestKind.APPROVAL, "carol@example.com", "Vendor contract renewal",
                ("05-out-of-office.eml", "07-forwarded-spoof.eml")),
)
# Replies that answer no request of the demo.
STRAYS = ("06-bounce.eml", "08-unknown-token.eml")

CONFIG = """\
# Written by `ackmail demo`: SQLite, a local Maildir, rules with a log action and a webhook.
[database]
url = "sqlite:///ackmail.db"

[security]
token_secret = {{ file = ".ackmail/token_secret" }}
cache_key = {{ file = ".ackmail/cache_key" }}
trusted_authserv_id = "mx.example.com"

[requests]
reply_address = "{reply_to}"
plus_addressing = true
message_id_domain = "example.com"

[[mailbox]]
name = "demo"
protocol = "maildir"
path = "Maildir"

[rules]
file = "rules.toml"
"""

RULES = """\
[[rule]]
name = "log-decisions"
on = ["request.approved", "request.rejected", "request.acknowledged"]
[[rule.action]]
type = "log"
message = "request ${{request.ref}} is ${{request.status}} (by ${{response.address}})"

[[rule]]
name = "tell-the-workflow"
on = ["request.approved", "request.rejected", "request.acknowledged"]
[[rule.action]]
type = "webhook"
url = "{url}"
secret = {{ file = ".ackmail/webhook_secret" }}
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="the whole pipeline on SQLite and a Maildir, no server")
    parser.add_argument("--dir", type=Path, metavar="DIR",
                        help="work here instead of a new temporary directory")
    parser.set_defaults(handler=run_demo)


def run_demo(ctx: CommandContext) -> int:
    import secrets
    import tempfile

    from ingest.cli.demo_receiver import DemoReceiver

    workdir = ctx.args.dir or Path(tempfile.mkdtemp(prefix="ackmail-demo-"))
    webhook_secret = secrets.token_urlsafe(24)
    with DemoReceiver(webhook_secret.encode()) as receiver:
        config = _write_files(workdir.absolute(), receiver.url, webhook_secret)
        demo = CommandContext(argparse.Namespace(config=str(config)))
        try:
            _run(demo, receiver)
        finally:
            demo.close()
    print(f"\nEverything is kept in {workdir}; look around with, e.g.:\n"
          f"  ackmail --config {config} acks list\n"
          f"  ackmail --config {config} messages list --status ignored")
    return 0


def _run(demo: CommandContext, receiver: DemoReceiver) -> None:
    from ingest.app import dispatcher
    from ingest.cli.summary import format_summary
    from ingest.store import migrate

    # The demo prints its own report; of the logs it keeps the log action's lines.
    for name in ("ingest", "rules.engine", "rules.dispatch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    settings = demo.settings
    migrate.upgrade(demo.engine)
    print(f"ackmail demo: SQLite and a Maildir in {settings.path.parent}\n")
    poller = _poller(demo)
    poller.run()  # first look: the mailbox is watched from now on, so replies count as new
    registered = _register(demo.engine, settings)
    _deliver(settings, registered)
    print(f"\npoll --once:     {format_summary(_poller(demo).run()).strip()}")
    tally = dispatcher(settings, demo.store(), 0.1).run_once()
    print(f"dispatch --once: {tally}")
    _show(demo.engine, receiver)


def _write_files(workdir: Path, webhook_url: str, webhook_secret: str) -> Path:
    import secrets
    from mailbox import Maildir

    keys = workdir / ".ackmail"
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, value in (("token_secret", secrets.token_urlsafe(32)),
                        ("cache_key", secrets.token_urlsafe(32)),
                        ("webhook_secret", webhook_secret)):
        (keys / name).write_text(value + "\n", encoding="utf-8")
        (keys / name).chmod(0o600)
    Maildir(workdir / "Maildir", create=True)
    (workdir / "rules.toml").write_text(RULES.format(url=webhook_url), encoding="utf-8")
    config = workdir / "ackmail.toml"
    config.write_text(CONFIG.format(reply_to=REPLY_TO), encoding="utf-8")
    return config


def _poller(demo: CommandContext) -> Poller:
    from ingest.app import poller
    from ingest.poller.service import PollOptions

    return poller(demo.settings, demo.store(), PollOptions(once=True))


def _register(engine: Engine, settings: Settings) -> dict[str, RegisteredRequest]:
    from ingest.register import NewRequest, register_request
    from ingest.store.db import transaction

    assert settings.security.token_secret is not None  # the demo config sets it
    print("Requests registered (each responder gets their own token):")
    registered = {}
    with transaction(engine) as session:
        for item in REQUESTS:
            new = NewRequest(item.kind, item.ref, (item.responder,), item.subject,
                             parse_duration("3d"))
            done = register_request(session, new, secret=settings.security.token_secret.reveal(),
                                    config=settings.requests)
            registered[item.ref] = done
            print(f"  {item.ref:<9} {item.kind.value:<9} {item.responder:<20} "
                  f"token {done.recipients[0].token}  {item.subject}")
    return registered


def _deliver(settings: Settings, registered: dict[str, RegisteredRequest]) -> None:
    from mailbox import Maildir

    maildir_path = settings.mailbox("demo").path
    assert maildir_path is not None
    box = Maildir(maildir_path, create=False)
    time.sleep(0.05)  # the replies arrive after the mailbox started being watched
    names = []
    for item in REQUESTS:
        recipient = registered[item.ref].recipients[0]
        for name in item.replies:
            box.add(_reply(name, recipient.token, recipient.headers["Message-ID"]))
            names.append(name)
    for name in STRAYS:
        box.add(_reply(name, "", ""))
        names.append(name)
    print(f"\n{len(names)} messages arrived in the Maildir: " +
          ", ".join(n[3:-4].replace("-", " ") for n in names))


def _reply(name: str, token: str, in_reply_to: str) -> bytes:
    from email.utils import format_datetime

    template = resources.files("ingest.cli").joinpath(f"templates/demo/{name}").read_text("utf-8")
    text = string.Template(template).safe_substitute(
        token=token, in_reply_to=in_reply_to, reply_to=REPLY_TO,
        date=format_datetime(utcnow()))
    return text.replace("\n", "\r\n").encode("utf-8")


def _show(engine: Engine, receiver: DemoReceiver) -> None:
    from ingest.store import queries
    from ingest.store.db import read_session

    with read_session(engine) as session:
        requests = queries.list_requests(session)
        responses = queries.list_responses(session)
        ignored = queries.list_messages(session, status="ignored")
    print("\nDecisions")
    print(render(sorted(requests, key=lambda r: r["id"]),
                 ("ref", "kind", "status", "decided_at", "responses"), "table"))
    print("\nResponses (every reply to a request, decisive or not, and why)")
    print(render(sorted(responses, key=lambda r: r["id"]),
                 ("ref", "address", "sender_verified", "intent", "decisive", "reason"), "table"))
    print("\nIgnored messages, and why")
    print(render(ignored, ("sender", "reason"), "table"))
    print("\nWebhook calls the demo's workflow receiver got (signature checked with the secret)")
    for delivery in receiver.deliveries:
        verdict = "signature ok" if delivery.signature_ok else "BAD SIGNATURE"
        print(f"  {delivery.event:<22} {delivery.ref or '-':<9} Idempotency-Key "
              f"{delivery.idempotency_key}  {verdict}")
