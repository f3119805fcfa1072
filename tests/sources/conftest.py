"""Fixtures for the source and poller tests: mailboxes on the real Dovecot, fast pollers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ingest.auth import TokenProviders
from ingest.config import MailboxConfig, OAuthConfig, SecurityConfig, Settings
from ingest.config.reader import Secret
from ingest.parse.message import ParseOptions
from ingest.pipeline import PipelineConfig
from ingest.poller.service import Poller, PollOptions, PollSummary, RetryPolicy
from ingest.sources.base import SourceFactory, SourceOptions
from ingest.sources.registry import SOURCES
from ingest.store.db import make_engine
from ingest.store.migrate import upgrade
from tests.auth.conftest import ALICE, APP_ID, APP_SECRET, PUBLIC_ID, SHARED
from tests.servers.dovecot import DovecotServer
from tests.servers.dovecot_fixtures import DovecotFactory
from tests.servers.idp import IdentityProvider
from tests.sources.mail import SECRET

FAST_RETRY = RetryPolicy(initial_seconds=0.05, cap_seconds=0.3, jitter_seconds=0.05,
                         once_attempts=4, healthy_seconds=0.5, slow_retry_seconds=0.3)
FAST_SOURCE = SourceOptions(batch_size=50, timeout_seconds=10, idle_renew_seconds=30,
                            wake_seconds=0.1)
PIPELINE = PipelineConfig(ParseOptions(), SECRET)


def imap_mailbox(server: DovecotServer, **overrides: Any) -> MailboxConfig:
    """bob's INBOX over IMAPS with a password, filing into ackmail/processed."""
    bob = server.users.bob
    box = MailboxConfig(name="approvals", protocol="imap", host=server.host,
                        port=server.imaps_port, security="ssl", ca_file=server.pki.ca_pem,
                        username=bob.address, password=bob.password,
                        processed_folder="ackmail/processed", poll_interval_seconds=1)
    return replace(box, **overrides)


def pop3_mailbox(server: DovecotServer, **overrides: Any) -> MailboxConfig:
    """bob's maildrop over POP3S with a password."""
    values: dict[str, Any] = {"protocol": "pop3", "port": server.pop3s_port,
                              "processed_folder": None} | overrides
    return imap_mailbox(server, **values)


def settings_for(tmp_path: Path, *boxes: MailboxConfig, **overrides: Any) -> Settings:
    """Settings holding ``boxes`` (the engine is passed to the poller separately)."""
    settings = Settings(path=tmp_path / "ackmail.toml", database_url="sqlite://",
                        security=SecurityConfig(token_secret=Secret(SECRET, "test"),
                                                cache_key=Secret("k" * 32, "test")),
                        mailboxes=boxes, state_dir=tmp_path / "state")
    return replace(settings, **overrides)


PollerFactory = Callable[..., Poller]


@pytest.fixture
def make_poller(tmp_path: Path) -> PollerFactory:
    """``make_poller(engine, *boxes, once=True, ...)``: a poller with fast test timings."""

    def make(engine: Engine, *boxes: MailboxConfig, providers: TokenProviders | None = None,
             registry: Mapping[str, SourceFactory] = SOURCES,
             pipeline: PipelineConfig = PIPELINE, background: tuple[Any, ...] = (),
             settings: Settings | None = None, **options: Any) -> Poller:
        values: dict[str, Any] = {"retry": FAST_RETRY, "source": FAST_SOURCE,
                                  "tick_seconds": 0.1} | options
        return Poller(settings or settings_for(tmp_path, *boxes), engine, pipeline,
                      options=PollOptions(**values), providers=providers, registry=registry,
                      background=background)

    return make


def poll_once(make_poller: PollerFactory, engine: Engine, *boxes: MailboxConfig,
              **options: Any) -> PollSummary:
    """Drain ``boxes`` once and return the summary."""
    return make_poller(engine, *boxes, once=True, **options).run()


@contextmanager
def running(poller: Poller) -> Iterator[Poller]:
    """Run a long-running poller in a thread; it is stopped and joined whatever happens."""
    result: list[PollSummary] = []
    thread = threading.Thread(target=lambda: result.append(poller.run()), name="test-poller")
    thread.start()
    try:
        yield poller
    finally:
        poller.stop()
        thread.join(30)
        assert not thread.is_alive(), "the poller did not stop within 30 s"


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, what: str = "") -> float:
    """Poll ``condition`` until true; returns the seconds it took (fails after ``timeout``)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what or condition}")
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """One SQLite database, for tests whose point is not the database."""
    engine = make_engine(f"sqlite:///{tmp_path / 'sources.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


# --- OAuth: the test identity provider, and a Dovecot that trusts its tokens

OAuthMailbox = Callable[..., MailboxConfig]


@pytest.fixture
def oauth_server(idp: IdentityProvider, dovecot_factory: DovecotFactory) -> DovecotServer:
    """A Dovecot trusting the provider's issuer and key, granting APP_ID the shared mailbox."""
    return dovecot_factory(issuer=idp.issuer, public_key_pem=idp.public_key_pem, kid=idp.kid,
                           app_id=APP_ID)


@pytest.fixture
def token_providers(tmp_path: Path) -> TokenProviders:
    """The poller's token providers; the state dir and key match ``settings_for``."""
    return TokenProviders(tmp_path / "state", Secret("k" * 32, "test"), timeout=10.0)


@pytest.fixture
def oauth_mailbox(idp: IdentityProvider, oauth_server: DovecotServer) -> OAuthMailbox:
    """``oauth_mailbox("oauth2-app" | "oauth2-delegated", protocol=..., **overrides)``."""
    idp.register_client(APP_ID, secret=APP_SECRET)
    idp.register_client(PUBLIC_ID)

    def make(auth: str, *, protocol: str = "imap", oauth: dict[str, Any] | None = None,
             **overrides: Any) -> MailboxConfig:
        app = auth == "oauth2-app"
        given: dict[str, Any] = {
            "client_secret": Secret(APP_SECRET, "test") if app else None} | (oauth or {})
        settings = OAuthConfig(tenant_id=idp.tenant, client_id=APP_ID if app else PUBLIC_ID,
                               authority=idp.base_url, ca_file=Path(idp.ca_pem), **given)
        port = oauth_server.imaps_port if protocol == "imap" else oauth_server.pop3s_port
        box = MailboxConfig(name="shared" if app else "alice", protocol=protocol,
                            host=oauth_server.host, port=port, security="ssl",
                            ca_file=oauth_server.pki.ca_pem, username=SHARED if app else ALICE,
                            auth=auth, oauth=settings, poll_interval_seconds=1)
        return replace(box, **overrides)

    return make
