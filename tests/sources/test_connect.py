"""Reaching the server: TLS and STARTTLS, password and bearer logins, errors at the boundary."""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import jwt
import pytest

from ingest.auth import AuthError, LoginCredentials, LoginRefused, TokenProviders
from ingest.auth.sasl import Mechanism, SaslResponder
from ingest.config import MailboxConfig
from ingest.sources import imap_session, pop3_session
from ingest.sources.base import Cursor, SourceContext
from ingest.sources.connect import CertificateRejected, ConnectionLost, log_in
from ingest.sources.imap import FolderMissing, ImapSource
from ingest.sources.pop3 import Pop3Source
from tests.auth.certs import make_certificate
from tests.auth.conftest import APP_ID
from tests.servers.dovecot import DovecotServer
from tests.servers.idp import IdentityProvider
from tests.servers.tls import make_test_pki
from tests.sources.conftest import FAST_SOURCE, OAuthMailbox, imap_mailbox, pop3_mailbox
from tests.sources.mail import unrelated

CLIENT_CREDENTIALS = "client_credentials"


def _context(box: MailboxConfig, providers: TokenProviders | None = None) -> SourceContext:
    return SourceContext(box, providers or TokenProviders(Path("/nonexistent"), None),
                         lambda keys: set(), FAST_SOURCE)


def _count(source: ImapSource | Pop3Source) -> int:
    source.connect()
    try:
        return sum(len(batch.items) for batch in source.fetch(Cursor()))
    finally:
        source.close()


def test_imap_starttls_and_pop3_stls_log_in_with_a_password(dovecot: DovecotServer) -> None:
    dovecot.deliver(dovecot.users.bob.address, unrelated())
    imap = imap_mailbox(dovecot, security="starttls", port=dovecot.imap_port)
    pop3 = pop3_mailbox(dovecot, security="starttls", port=dovecot.pop3_port)

    imap_source, pop3_source = ImapSource(_context(imap)), Pop3Source(_context(pop3))

    assert (_count(imap_source), _count(pop3_source)) == (1, 1)
    assert (imap_source.mechanism, pop3_source.mechanism) == ("LOGIN", "USER/PASS")


def test_an_untrusted_certificate_names_ca_file(dovecot: DovecotServer, tmp_path: Path) -> None:
    other_ca = make_test_pki(tmp_path / "other").ca_pem
    box = imap_mailbox(dovecot, ca_file=other_ca)

    with pytest.raises(CertificateRejected) as rejected:
        ImapSource(_context(box)).connect()

    assert "ca_file" in str(rejected.value) and "not trust" in str(rejected.value)


def test_a_closed_port_is_a_transient_connection_error(dovecot: DovecotServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        closed = holder.getsockname()[1]
    box = imap_mailbox(dovecot, port=closed)

    with pytest.raises(ConnectionLost, match=f"127.0.0.1:{closed}"):
        ImapSource(_context(box)).connect()


def test_a_wrong_password_is_explained_without_showing_it(dovecot: DovecotServer) -> None:
    bob = dovecot.users.bob
    assert bob.password is not None
    wrong = replace(bob.password, value="not-" + bob.password.reveal())
    box = imap_mailbox(dovecot, password=wrong)

    with pytest.raises(AuthError) as refused:
        ImapSource(_context(box)).connect()

    assert "user name or password" in refused.value.cause
    assert wrong.reveal() not in str(refused.value)


def test_a_missing_folder_is_a_settings_error(dovecot: DovecotServer) -> None:
    box = imap_mailbox(dovecot, folder="Approvals")

    with pytest.raises(FolderMissing, match="'Approvals' does not exist"):
        ImapSource(_context(box)).connect()


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_app_only_tokens_log_in_with_xoauth2(oauth_server: DovecotServer,
                                             oauth_mailbox: OAuthMailbox,
                                             token_providers: TokenProviders,
                                             protocol: str) -> None:
    oauth_server.deliver(oauth_server.users.shared.address, unrelated())
    box = oauth_mailbox("oauth2-app", protocol=protocol)
    source = (ImapSource if protocol == "imap" else Pop3Source)(_context(box, token_providers))

    assert _count(source) == 1
    assert source.mechanism == "XOAUTH2"


@pytest.mark.parametrize(("protocol", "pfx"), [("imap", True), ("pop3", False)])
def test_app_only_certificate_reads_the_mailbox(oauth_server: DovecotServer,
                                                oauth_mailbox: OAuthMailbox, idp: IdentityProvider,
                                                token_providers: TokenProviders, tmp_path: Path,
                                                protocol: str, pfx: bool) -> None:
    oauth_server.deliver(oauth_server.users.shared.address, unrelated())
    cert = make_certificate(tmp_path, pfx=pfx, passphrase="pfx-pass" if pfx else None)
    idp.register_client(APP_ID, certificate_pem=cert.pem)
    box = oauth_mailbox("oauth2-app", protocol=protocol,
                        oauth={"client_secret": None, "certificate": cert.config})
    source = (ImapSource if protocol == "imap" else Pop3Source)(_context(box, token_providers))

    assert _count(source) == 1
    assert [r.grant_type for r in idp.requests(CLIENT_CREDENTIALS)] == [CLIENT_CREDENTIALS]
    assert "x5t#S256" in jwt.get_unverified_header(idp.assertions()[-1])


def test_a_refused_token_is_dropped_and_the_login_retried_once_fresh(
        oauth_mailbox: OAuthMailbox, token_providers: TokenProviders) -> None:
    box = oauth_mailbox("oauth2-app")
    seen: list[str] = []

    def refuse_first(credentials: LoginCredentials) -> str:
        seen.append(credentials.secret.reveal())
        if len(seen) == 1:
            raise LoginRefused("AUTHENTICATE failed.")
        return "XOAUTH2"

    assert log_in(box, token_providers, refuse_first) == "XOAUTH2"
    assert len(seen) == 2 and seen[0] != seen[1]  # the second token is a new one


def test_a_token_refused_twice_is_explained_by_its_claims(
        oauth_mailbox: OAuthMailbox, token_providers: TokenProviders) -> None:
    box = oauth_mailbox("oauth2-app", oauth={"scopes": ("https://graph.microsoft.com/.default",)})

    def refuse(credentials: LoginCredentials) -> str:
        raise LoginRefused("AUTHENTICATE failed.")

    with pytest.raises(AuthError) as refused:
        log_in(box, token_providers, refuse)

    assert "token is for another API" in refused.value.cause


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_oauthbearer_is_used_where_xoauth2_is_not_offered(
        oauth_server: DovecotServer, oauth_mailbox: OAuthMailbox,
        token_providers: TokenProviders, monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    module = imap_session if protocol == "imap" else pop3_session
    monkeypatch.setattr(module, f"{protocol}_mechanisms", lambda session: {"OAUTHBEARER"})
    oauth_server.deliver(oauth_server.users.shared.address, unrelated())
    box = oauth_mailbox("oauth2-app", protocol=protocol)
    source = (ImapSource if protocol == "imap" else Pop3Source)(_context(box, token_providers))

    assert _count(source) == 1
    assert source.mechanism == "OAUTHBEARER"


def test_a_poll_interval_longer_than_the_server_timeout_sends_noops(
        dovecot: DovecotServer) -> None:
    box = imap_mailbox(dovecot, idle=False, poll_interval_seconds=1)
    source = ImapSource(SourceContext(box, TokenProviders(Path("/nonexistent"), None),
                                      lambda keys: set(),
                                      replace(FAST_SOURCE, idle_renew_seconds=0.2)))
    source.connect()
    try:
        noops: list[object] = []
        real_noop = source.client.noop
        source.client.noop = lambda: noops.append(real_noop())  # type: ignore[method-assign]
        started = time.monotonic()
        source.wait(threading.Event())
        assert time.monotonic() - started >= 1.0
        assert len(noops) >= 4
    finally:
        source.close()


def test_debug_logs_show_neither_passwords_nor_tokens(
        dovecot: DovecotServer, oauth_server: DovecotServer, oauth_mailbox: OAuthMailbox,
        token_providers: TokenProviders, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    password = dovecot.users.bob.password
    assert password is not None

    _count(ImapSource(_context(imap_mailbox(dovecot))))
    _count(Pop3Source(_context(pop3_mailbox(dovecot))))
    box = oauth_mailbox("oauth2-app")
    for source in (ImapSource(_context(box, token_providers)),
                   Pop3Source(_context(replace(box, protocol="pop3",
                                               port=oauth_server.pop3s_port), token_providers))):
        _count(source)
    token = token_providers.for_subject(box).token().secret  # the cached one both used

    logged = caplog.text
    assert "AUTHENTICATE" in logged  # the bearer logins were logged, redacted
    assert password.reveal() not in logged
    assert token.reveal() not in logged
    assert SaslResponder(Mechanism.XOAUTH2, box.username, token).encoded() not in logged


@pytest.mark.parametrize("debug", [False, True])
def test_protocol_lines_are_formatted_only_for_a_debug_log(
        dovecot: DovecotServer, caplog: pytest.LogCaptureFixture, debug: bool) -> None:
    box = imap_mailbox(dovecot)
    caplog.set_level(logging.DEBUG if debug else logging.INFO, logger="imapclient.imaplib")
    client = imap_session.open_imap(box, timeout=10)
    try:
        client.noop()
    finally:
        imap_session.close_imap(client)
    assert (client._imap.debug > 0) is debug
    assert any("NOOP" in record.getMessage() for record in caplog.records) is debug
