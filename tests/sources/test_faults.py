"""Faults while polling the real Dovecot: cut connections, a restart, a crash between commit
and move, a token expiring mid-session. Every message is recorded exactly once."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar

import pytest
from sqlalchemy import Engine

from ingest.auth import TokenProviders
from ingest.sources.base import Filing
from ingest.sources.connect import ConnectionLost
from ingest.sources.imap import ImapSource
from ingest.sources.registry import SOURCES
from tests.servers.dovecot import DovecotServer
from tests.servers.dovecot_fixtures import TcpProxyFactory
from tests.servers.idp import IdentityProvider
from tests.sources.conftest import (
    FAST_SOURCE,
    OAuthMailbox,
    PollerFactory,
    imap_mailbox,
    poll_once,
    running,
    wait_for,
)
from tests.sources.mail import message_count, source_keys, unrelated


def _recorded(engine: Engine, count: int) -> bool:
    return message_count(engine) >= count


def test_a_connection_cut_mid_fetch_reconnects_and_records_everything_once(
        dovecot: DovecotServer, engine: Engine, make_poller: PollerFactory,
        tcp_proxy_factory: TcpProxyFactory, caplog: pytest.LogCaptureFixture) -> None:
    bob = dovecot.users.bob.address
    dovecot.deliver_many(bob, [unrelated() for _ in range(30)])
    proxy = tcp_proxy_factory(dovecot.host, dovecot.imaps_port)
    proxy.cut_after_bytes(25_000)  # every connection breaks inside its second FETCH
    box = imap_mailbox(dovecot, port=proxy.port)

    with running(make_poller(engine, box, source=replace(FAST_SOURCE, batch_size=5))):
        wait_for(lambda: dovecot.list_folder(bob) == 0, 30, "the inbox to be drained")

    keys = source_keys(engine)
    assert len(keys) == len(set(keys)) == 30
    assert dovecot.list_folder(bob, "ackmail/processed") == 30
    assert proxy.accepted >= 3
    # Each broken session had filed a batch: it reconnects at once, the backoff never grows.
    assert "reconnecting at once: this session filed 5 messages" in caplog.text
    assert "attempt 2)" not in caplog.text


def test_a_server_restart_during_the_loop_loses_and_repeats_nothing(
        dovecot: DovecotServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    bob = dovecot.users.bob.address
    with running(make_poller(sqlite_engine, imap_mailbox(dovecot))):
        dovecot.deliver_many(bob, [unrelated(), unrelated()])
        wait_for(lambda: _recorded(sqlite_engine, 2), what="the first two messages")
        dovecot.restart()
        dovecot.deliver_many(bob, [unrelated(), unrelated()])
        wait_for(lambda: dovecot.list_folder(bob, "ackmail/processed") == 4, 20,
                 "the messages delivered after the restart")

    assert message_count(sqlite_engine) == 4


class _MoveFailsOnce(ImapSource):
    """The server-side move breaks once, after the records are committed (a crash there)."""

    failed: ClassVar[bool] = False

    def file(self, filings: Sequence[Filing]) -> None:
        if not _MoveFailsOnce.failed:
            _MoveFailsOnce.failed = True
            raise ConnectionLost("simulated: the connection broke before the move")
        super().file(filings)


def test_a_crash_between_commit_and_move_records_nothing_twice_and_moves_later(
        dovecot: DovecotServer, engine: Engine, make_poller: PollerFactory) -> None:
    bob = dovecot.users.bob.address
    dovecot.deliver_many(bob, [unrelated() for _ in range(3)])
    _MoveFailsOnce.failed = False

    summary = poll_once(make_poller, engine, imap_mailbox(dovecot),
                        registry={**SOURCES, "imap": _MoveFailsOnce})

    (result,) = summary.mailboxes
    assert (result.ignored, result.duplicates, result.error) == (3, 3, None)
    assert message_count(engine) == 3
    assert (dovecot.list_folder(bob), dovecot.list_folder(bob, "ackmail/processed")) == (0, 3)


def test_a_token_that_expires_mid_session_is_replaced_on_reconnect(
        idp: IdentityProvider, oauth_server: DovecotServer, oauth_mailbox: OAuthMailbox,
        token_providers: TokenProviders, sqlite_engine: Engine, make_poller: PollerFactory,
        tcp_proxy_factory: TcpProxyFactory) -> None:
    idp.token_lifetime = 2
    shared = oauth_server.users.shared.address
    proxy = tcp_proxy_factory(oauth_server.host, oauth_server.imaps_port)
    box = oauth_mailbox("oauth2-app", port=proxy.port, processed_folder="done")
    poller = make_poller(sqlite_engine, box, providers=token_providers)

    with running(poller):
        oauth_server.deliver(shared, unrelated())
        wait_for(lambda: _recorded(sqlite_engine, 1), what="the first message")
        time.sleep(idp.token_lifetime + 0.5)
        proxy.cut()  # as Exchange ends a session whose token expired
        oauth_server.deliver(shared, unrelated())
        wait_for(lambda: _recorded(sqlite_engine, 2), what="a message after the reconnect")

    assert len(idp.requests("client_credentials")) >= 2
    assert "Token has expired" not in oauth_server.log_text()
    assert proxy.accepted >= 2
