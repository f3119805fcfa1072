"""POP3 against the real Dovecot (and Cyrus' pop3d): UIDL identity, delete_after only after
commit, XOAUTH2."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from sqlalchemy import Engine, select

from ingest.auth import TokenProviders
from ingest.sources.base import Filing
from ingest.sources.connect import ConnectionLost
from ingest.sources.pop3 import Pop3Source, received_at
from ingest.sources.registry import SOURCES
from ingest.store.db import read_session
from ingest.store.models import Checkpoint
from tests.auth.conftest import sign_in_by_device_code
from tests.servers.cyrus_fixtures import CyrusFactory
from tests.servers.dovecot import DovecotServer
from tests.servers.idp import IdentityProvider
from tests.servers.mail_server import MailServer
from tests.servers.matrix_fixtures import across_servers
from tests.sources.conftest import (
    FAST_RETRY,
    OAuthMailbox,
    PollerFactory,
    poll_once,
    pop3_mailbox,
    running,
    wait_for,
)
from tests.sources.mail import event_types, message_count, source_keys, unrelated


@across_servers
def test_messages_are_read_once_by_uidl_and_kept_without_delete_after(
        mail_server: MailServer, engine: Engine, make_poller: PollerFactory) -> None:
    bob = mail_server.users.bob.address
    mail_server.deliver_many(bob, [unrelated() for _ in range(3)])
    box = pop3_mailbox(mail_server)

    first = poll_once(make_poller, engine, box)
    mail_server.deliver(bob, unrelated())
    second = poll_once(make_poller, engine, box)

    assert (first.mailboxes[0].ignored, second.mailboxes[0].ignored) == (3, 1)
    assert second.mailboxes[0].duplicates == 0  # recorded UIDLs are not retrieved again
    assert mail_server.list_folder(bob) == 4
    assert all(key.startswith("pop3:") for key in source_keys(engine))


@across_servers
def test_delete_after_removes_messages_once_recorded(
        mail_server: MailServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    bob = mail_server.users.bob.address
    mail_server.deliver_many(bob, [unrelated() for _ in range(3)])

    summary = poll_once(make_poller, sqlite_engine, pop3_mailbox(mail_server, delete_after=True))

    assert summary.mailboxes[0].ignored == 3
    assert (mail_server.list_folder(bob), message_count(sqlite_engine)) == (0, 3)


class _DeleFailsOnce(Pop3Source):
    """The session breaks after the records are committed, before any DELE."""

    failed: ClassVar[bool] = False

    def file(self, filings: Sequence[Filing]) -> None:
        if not _DeleFailsOnce.failed:
            _DeleFailsOnce.failed = True
            raise ConnectionLost("simulated: the connection broke before DELE")
        super().file(filings)


def test_a_break_before_dele_deletes_on_the_next_session_without_recording_twice(
        dovecot: DovecotServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    bob = dovecot.users.bob.address
    dovecot.deliver_many(bob, [unrelated() for _ in range(2)])
    _DeleFailsOnce.failed = False

    summary = poll_once(make_poller, sqlite_engine, pop3_mailbox(dovecot, delete_after=True),
                        registry={**SOURCES, "pop3": _DeleFailsOnce})

    assert (summary.mailboxes[0].ignored, summary.mailboxes[0].duplicates) == (2, 2)
    assert (dovecot.list_folder(bob), message_count(sqlite_engine)) == (0, 2)


def test_the_poll_loop_logs_in_again_to_see_new_mail(
        dovecot: DovecotServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    bob = dovecot.users.bob.address
    with running(make_poller(sqlite_engine, pop3_mailbox(dovecot, delete_after=True))):
        wait_for(lambda: _last_success(sqlite_engine) is not None, what="the first session")
        dovecot.deliver(bob, unrelated())
        wait_for(lambda: message_count(sqlite_engine) == 1, 10, "the next POP3 session")
        wait_for(lambda: dovecot.list_folder(bob) == 0, 10, "the deletion at QUIT")


def _last_success(engine: Engine) -> datetime | None:
    with read_session(engine) as session:
        return session.scalar(select(Checkpoint.last_success_at))


def test_a_delegated_mailbox_logs_in_with_xoauth2(
        idp: IdentityProvider, oauth_server: DovecotServer, oauth_mailbox: OAuthMailbox,
        token_providers: TokenProviders, sqlite_engine: Engine,
        make_poller: PollerFactory) -> None:
    box = oauth_mailbox("oauth2-delegated", protocol="pop3", delete_after=True)
    sign_in_by_device_code(idp, token_providers.for_subject(box))
    alice = oauth_server.users.alice.address
    oauth_server.deliver(alice, unrelated())

    summary = poll_once(make_poller, sqlite_engine, box, providers=token_providers)

    assert (summary.mailboxes[0].ignored, summary.mailboxes[0].error) == (1, None)
    assert oauth_server.list_folder(alice) == 0


def test_received_at_is_the_first_received_header() -> None:
    raw = (b"Received: from mx2 by mx1; Tue, 3 Nov 2026 09:00:05 +0100\r\n"
           b"Received: from origin by mx2; Tue, 3 Nov 2026 08:59:59 +0100\r\n"
           b"Subject: x\r\n\r\nbody\r\n")

    assert received_at(raw) == datetime(2026, 11, 3, 8, 0, 5, tzinfo=UTC)
    assert received_at(b"Subject: no trace\r\n\r\nbody\r\n") is None


def test_a_login_delay_is_waited_out_not_taken_for_a_wrong_password(
        cyrus_factory: CyrusFactory, sqlite_engine: Engine, make_poller: PollerFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    # Debian's imapd.conf: one POP3 login a minute ("-ERR [LOGIN-DELAY] Logins must be at
    # least 1 minute apart", CAPA "LOGIN-DELAY 60").
    server = cyrus_factory(settings={"popminpoll": "1"})
    bob = server.users.bob.address
    server.deliver(bob, unrelated())
    box = pop3_mailbox(server)
    poll_once(make_poller, sqlite_engine, box)
    server.deliver(bob, unrelated())

    with caplog.at_level(logging.WARNING):
        again = poll_once(make_poller, sqlite_engine, box,
                          retry=replace(FAST_RETRY, throttle_cap_seconds=0.5, once_attempts=2))

    error = again.mailboxes[0].error or ""
    assert "allows a POP3 login only every 60 s" in error and "poll_interval" in error
    assert "suggests waiting 60.0 s; waiting 0.5 s" in caplog.text
    assert "auth.failed" not in event_types(sqlite_engine)
    assert message_count(sqlite_engine) == 1
