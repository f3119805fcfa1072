"""Fixtures for the ops web server: a database filled through the real pipeline, a running
server on 127.0.0.1 (ephemeral port), and a real headless Chromium driven by Playwright.

Subjects, reply text and reasons are hostile on purpose: the pages must show them as text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Error, Playwright, sync_playwright
from sqlalchemy import Engine, select

from ingest.config import MailboxConfig, RequestsConfig, Settings
from ingest.config.reader import Secret
from ingest.parse.message import ParseOptions
from ingest.pipeline import Arrival, PipelineConfig, process_message, quarantine
from ingest.register import NewRequest, register_request
from ingest.sources.base import SourceRef
from ingest.store.db import transaction
from ingest.store.models import (
    Checkpoint,
    Event,
    Outcome,
    OutcomeStatus,
    Request,
    RequestKind,
)
from ingest.timeutil import utcnow
from ingest.web.app import OpsApp, base_url, make_server, serving
from ingest.web.site import Site
from rules.actions.registry import build_registry
from rules.base import ActionEnvironment
from rules.engine import process_events
from rules.loader import parse_rules

SECRET = "web-test-secret"
PIPELINE = PipelineConfig(ParseOptions(), SECRET)
ALICE, BOB = "alice@example.test", "bob@example.test"
HOSTILE_SUBJECT = "<script>alert(1)</script> Expense claim"
HOSTILE_REPLY = 'Approved. <img src=x onerror="alert(2)"> go ahead'
# An instruction after the decision is the response's note, shown on the request page.
LATE_NOTE = 'please tell <b onmouseover="alert(4)">ops</b> first'
LATE_REPLY = f"Approved, but {LATE_NOTE}."
HOSTILE_REASON = "<b>parser</b> failed: <script>alert(3)</script>"
APPROVAL_AGE = timedelta(hours=2)  # decided after ~2 h: the "<= 4 h" bucket
ALERT_AGE = timedelta(minutes=10)  # acknowledged after ~9 min: the "<= 30 min" bucket
# Through the real rules engine, so every event carries the trace the request page shows.
RULES = """
rule = [
  { name = "log-approvals", on = ["request.approved"], action = [{ type = "log" }] },
  { name = "page-on-alerts", on = ["request.*"], when = { ref = "ALERT-*" }, action = [
    { type = "log" }] },
  { name = "rejections-only", on = ["request.rejected"], action = [{ type = "log" }] },
]
"""
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def reply(token: str, body: str, subject: str, n: int, sender: str = ALICE) -> bytes:
    """A reply to the request email carrying ``token``, as a mail client would write it."""
    return (
        f"From: {sender}\r\nTo: approvals@example.test\r\n"
        f"Subject: RE: {subject} [{token}]\r\nMessage-ID: <web-{n}@mail.example.test>\r\n"
        f"In-Reply-To: <ackmail.{token}.1@approvals.example.test>\r\n"
        "Date: Mon, 2 Nov 2026 10:04:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n\r\n> Please reply APPROVE or REJECT.\r\n> Ref: {token}\r\n"
    ).encode()


def stranger(subject: str, n: int) -> bytes:
    """A message that answers nothing (no token): it is ignored, with the reason."""
    return (
        f"From: mallory@example.test\r\nTo: approvals@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <web-{n}@mail.example.test>\r\nDate: Mon, 2 Nov 2026 10:04:00 +0000\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHello <script>alert(4)</script>\r\n"
    ).encode()


def source(n: int, delay_seconds: float = 3.0) -> SourceRef:
    """Where message ``n`` came from; delivered ``delay_seconds`` before it is recorded."""
    return SourceRef("approvals", f"imap:INBOX:7:{n}", "INBOX", 7, n,
                     received_at=utcnow() - timedelta(seconds=delay_seconds))


@dataclass(frozen=True)
class Filled:
    """What the filled database holds, by id."""

    approval_id: int
    alert_id: int
    ignored_message_id: int
    quarantined_message_id: int
    outcome_id: int


@pytest.fixture
def filled(engine: Engine) -> Filled:
    """Two requests decided by replies, one ignored and one quarantined message, an outcome."""
    with transaction(engine) as session:
        approval = register_request(
            session, NewRequest(RequestKind.APPROVAL, "CR-7<b>", (ALICE, BOB), HOSTILE_SUBJECT,
                                timedelta(days=1)),
            secret=SECRET, config=RequestsConfig())
        alert = register_request(
            session, NewRequest(RequestKind.ALERT, "ALERT-1", (BOB,), "Disk full on db-1",
                                timedelta(days=1)),
            secret=SECRET, config=RequestsConfig())
        # Asked a while ago, so the time to decision is something to chart.
        session.get_one(Request, approval.id).created_at = utcnow() - APPROVAL_AGE
        session.get_one(Request, alert.id).created_at = utcnow() - ALERT_AGE
    process_message(engine, PIPELINE, Arrival(
        source(1), reply(approval.recipients[0].token, HOSTILE_REPLY, HOSTILE_SUBJECT, 1)))
    process_message(engine, PIPELINE, Arrival(
        source(2, 40.0), reply(alert.recipients[0].token, "ack", "Disk full on db-1", 2, BOB)))
    # Bob approves after Alice decided: a response, but not a decision.
    process_message(engine, PIPELINE, Arrival(
        source(5), reply(approval.recipients[1].token, LATE_REPLY, HOSTILE_SUBJECT, 5, BOB)))
    ignored = process_message(engine, PIPELINE, Arrival(source(3), stranger(HOSTILE_SUBJECT, 3)))
    quarantined = quarantine(engine, PIPELINE, Arrival(source(4), b"\x00garbage"), HOSTILE_REASON)
    assert ignored.message_id is not None and quarantined.message_id is not None
    registry = build_registry(ActionEnvironment(), plugins=[])
    process_events(engine, parse_rules(RULES, Path("rules.toml"), registry))
    with transaction(engine) as session:
        decided = session.scalars(
            select(Event).where(Event.type == "request.approved",
                                Event.request_id == approval.id)).one()
        outcome = Outcome(event_id=decided.id, rule="tell-<i>changes</i>", action="webhook",
                          params={}, status=OutcomeStatus.DEAD, attempts=5,
                          last_error="HTTP 500 <html>oops</html>")
        session.add(outcome)
        session.flush()
        outcome_id = outcome.id
    return Filled(approval.id, alert.id, ignored.message_id, quarantined.message_id, outcome_id)


def add_checkpoint(engine: Engine, mailbox: str, folder: str = "INBOX", *,
                   success_ago: timedelta | None = None, attempt_ago: timedelta | None = None,
                   **state: object) -> None:
    """A checkpoint as the poller leaves it, with ``state`` keys (idle, heartbeat_at...).

    The last attempt (``last_poll_at``, failed or not) is the last success unless given.
    """
    now = utcnow()
    attempt = success_ago if attempt_ago is None else attempt_ago
    with transaction(engine) as session:
        session.add(Checkpoint(
            mailbox=mailbox, folder=folder, first_watched_at=now - timedelta(days=1),
            last_success_at=None if success_ago is None else now - success_ago,
            last_poll_at=None if attempt is None else now - attempt,
            state=dict(state)))


def imap_mailbox(name: str = "approvals", **overrides: object) -> MailboxConfig:
    box = MailboxConfig(name=name, protocol="imap", host="127.0.0.1", username=f"{name}@test",
                        password=Secret("pw", "test"), poll_interval_seconds=60)
    return replace(box, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, engine: Engine) -> Settings:
    return Settings(path=tmp_path / "ackmail.toml", database_url=str(engine.url),
                    mailboxes=(imap_mailbox(),), state_dir=tmp_path / "state")


ServerFactory = Callable[..., AbstractContextManager[str]]


@pytest.fixture
def server(engine: Engine, settings: Settings) -> ServerFactory:
    """``with server(...) as url:`` runs the real server on 127.0.0.1:ephemeral meanwhile."""

    @contextmanager
    def run(*, host: str = "127.0.0.1", token: Secret | None = None,
            config: Settings | None = None) -> Iterator[str]:
        app = OpsApp(Site.create(config or settings, engine), token=token)
        with serving(make_server(app, host, 0)) as running:
            yield base_url(running)

    return run


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def chromium(playwright_session: Playwright,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Debian's Chromium, headless, with a fresh profile; a browser that cannot start fails."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    try:
        context = playwright_session.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    except Error as exc:
        pytest.fail(f"Chromium ({CHROMIUM}) did not start: {exc.message}; run "
                    "tests/servers/install.sh as root", pytrace=False)
    yield context
    context.close()
