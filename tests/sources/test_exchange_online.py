"""Exchange Online's answers, end to end: the poller against Dovecot behind ``ExchangeProxy``.

Each test arms one behaviour of Exchange Online (tests/servers/imap_proxy.py has the exact
texts) and checks what an operator would see: events, the checkpoint's error, the log.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ingest.auth import TokenProviders
from ingest.check import check_mailbox
from ingest.config import MailboxConfig
from ingest.poller.service import Poller
from ingest.store.db import read_session
from ingest.store.models import Checkpoint, Event
from tests.servers.dovecot import DovecotServer
from tests.servers.dovecot_fixtures import ExchangeProxyFactory
from tests.servers.idp import IdentityProvider
from tests.servers.imap_proxy import Act, ExchangeProxy
from tests.sources import conftest as shared
from tests.sources.conftest import FAST_RETRY, OAuthMailbox, PollerFactory, running, wait_for
from tests.sources.mail import event_types, message_count, source_keys, unrelated

# Fixtures shared with tests/sources, named here so pytest finds them for this module.
make_poller = shared.make_poller
sqlite_engine = shared.sqlite_engine
oauth_server = shared.oauth_server
oauth_mailbox = shared.oauth_mailbox
token_providers = shared.token_providers

ALWAYS = 1000  # connections: every one the test makes


@dataclass
class Scene:
    """An app-only mailbox on Dovecot behind the proxy, and the poller's pieces."""

    idp: IdentityProvider
    server: DovecotServer
    proxy: ExchangeProxy
    box: MailboxConfig
    providers: TokenProviders
    engine: Engine
    make_poller: PollerFactory

    def poller(self, **options: Any) -> Poller:
        return self.make_poller(self.engine, self.box, providers=self.providers, **options)

    def deliver(self, count: int = 1) -> None:
        self.server.deliver_many(self.box.username, [unrelated() for _ in range(count)])

    def reconnected(self, times: int = 1) -> None:
        wait_for(lambda: len(self.proxy.connected_at) > times, what=f"{times} reconnect(s)")

    def auth_events(self) -> list[Event]:
        with read_session(self.engine) as session:
            return list(session.scalars(select(Event).where(Event.type == "auth.failed")))

    def refused(self, act: Act) -> Event:
        """Poll while every connection gets ``act`` until three retries; the one event."""
        self.proxy.act(act, ALWAYS)
        with running(self.poller()):
            wait_for(lambda: bool(self.auth_events()), what="the auth failure")
            self.reconnected(3)  # backed off and tried again: still one episode
        [event] = self.auth_events()
        return event

    def tokens_issued(self) -> int:
        return len(self.idp.requests("client_credentials"))

    def last_error(self) -> str | None:
        with read_session(self.engine) as session:
            return session.scalars(select(Checkpoint.last_error)).one()


@pytest.fixture
def scene(idp: IdentityProvider, oauth_server: DovecotServer, oauth_mailbox: OAuthMailbox,
          exchange_proxy_factory: ExchangeProxyFactory, token_providers: TokenProviders,
          sqlite_engine: Engine, make_poller: PollerFactory) -> Scene:
    proxy = exchange_proxy_factory(oauth_server)
    return Scene(idp, oauth_server, proxy, oauth_mailbox("oauth2-app", port=proxy.port),
                 token_providers, sqlite_engine, make_poller)


def test_a_session_refused_after_login_records_one_diagnosed_auth_failure_and_check_agrees(
        scene: Scene) -> None:
    event = scene.refused(Act.NOT_CONNECTED)
    report = check_mailbox(scene.box, scene.providers, timeout=5)

    cause = event.payload["cause"]
    assert "did not open mailbox" in cause and "not connected" in cause
    assert "Add-MailboxPermission" in event.payload["fix"]
    assert report.failed_step == "folder"
    assert cause in report.steps[-1].detail


def test_a_refused_token_records_one_auth_failure_per_episode_with_its_claims(
        scene: Scene) -> None:
    event = scene.refused(Act.AUTH_FAILED)

    assert "AUTHENTICATE failed" in event.payload["cause"]
    claims = event.payload["token"]
    assert claims["aud"] == "https://outlook.office365.com"
    assert "IMAP.AccessAsApp" in claims["roles"] and claims["exp"].endswith("+00:00")
    assert "eyJ" not in json.dumps(event.payload)  # claims, never the token


@pytest.mark.parametrize("act", [Act.EXPIRE_IN_IDLE, Act.EXPIRE_IN_FETCH])
def test_a_session_ended_for_an_expired_token_reconnects_with_a_new_one(
        act: Act, scene: Scene) -> None:
    scene.proxy.act(act)
    scene.deliver(2)

    with running(scene.poller()):
        scene.reconnected()
        scene.deliver()
        wait_for(lambda: message_count(scene.engine) == 3, what="every message")

    assert scene.tokens_issued() == 2  # the cached token was not offered again
    keys = source_keys(scene.engine)
    assert len(set(keys)) == len(keys) == 3
    assert "auth.failed" not in event_types(scene.engine)


@pytest.mark.parametrize("act", [Act.THROTTLE_NO, Act.THROTTLE_BAD])
def test_throttling_waits_the_suggested_time_capped_not_the_backoff(
        act: Act, scene: Scene, caplog: pytest.LogCaptureFixture) -> None:
    scene.proxy.act(act)
    scene.deliver()
    retry = replace(FAST_RETRY, throttle_cap_seconds=1.5)

    with caplog.at_level(logging.WARNING), running(scene.poller(retry=retry)):
        scene.reconnected()
        wait_for(lambda: message_count(scene.engine) == 1, what="the message")

    pause = scene.proxy.connected_at[1] - scene.proxy.connected_at[0]
    assert 1.5 <= pause < 1.5 + 2 * FAST_RETRY.cap_seconds  # the backoff alone: ~0.1 s
    assert "suggests waiting 300.0 s; waiting 1.5 s" in caplog.text


def test_a_session_closed_at_the_idle_limit_reconnects_without_an_alert(
        scene: Scene, caplog: pytest.LogCaptureFixture) -> None:
    scene.proxy.act(Act.IDLE_LIMIT)

    with caplog.at_level(logging.INFO), running(scene.poller()):
        scene.reconnected()
        time.sleep(0.2)  # the new session is in IDLE
        scene.deliver()
        wait_for(lambda: message_count(scene.engine) == 1, what="the message")

    assert "Connection is closed. 13" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert scene.last_error() is None
    assert scene.tokens_issued() == 1  # the token is still good: no new one
