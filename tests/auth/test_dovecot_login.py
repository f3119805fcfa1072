"""End to end: tokens from the test provider, through ackmail's auth layer, into real Dovecot."""

from __future__ import annotations

import poplib

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from ingest.auth import TokenProvider, TokenProviders, credentials_for, diagnose_login_failure
from ingest.auth.sasl import Mechanism, SaslResponder
from ingest.config import MailboxConfig
from tests.auth.conftest import APP_ID, MailboxFactory
from tests.servers.dovecot import DovecotServer
from tests.servers.dovecot_fixtures import DovecotFactory
from tests.servers.idp import IdentityProvider


@pytest.fixture
def dovecot_for_idp(idp: IdentityProvider, dovecot_factory: DovecotFactory) -> DovecotServer:
    """A Dovecot that trusts the provider's issuer and key, granting APP_ID 'shared'."""
    return dovecot_factory(issuer=idp.issuer, public_key_pem=idp.public_key_pem, kid=idp.kid,
                           app_id=APP_ID)


def _imap(server: DovecotServer) -> IMAPClient:
    return IMAPClient(server.host, port=server.imaps_port, ssl=True,
                      ssl_context=server.client_context(), timeout=10)


def test_app_only_token_opens_the_granted_mailbox(dovecot_for_idp: DovecotServer,
                                                  providers: TokenProviders,
                                                  app_mailbox: MailboxConfig) -> None:
    login = credentials_for(app_mailbox, providers)

    with _imap(dovecot_for_idp) as client:
        client.oauth2_login(login.username, login.secret.reveal())
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0


def test_delegated_token_logs_in_over_pop3_oauthbearer(dovecot_for_idp: DovecotServer,
                                                       signed_in: TokenProvider,
                                                       delegated_mailbox: MailboxConfig,
                                                       providers: TokenProviders) -> None:
    login = credentials_for(delegated_mailbox, providers)
    pop = poplib.POP3_SSL(dovecot_for_idp.host, dovecot_for_idp.pop3s_port,
                          context=dovecot_for_idp.client_context(), timeout=10)
    try:
        response = SaslResponder(Mechanism.OAUTHBEARER, login.username, login.secret).encoded()
        # poplib has no AUTH command: speak it on its socket, read on its file.
        pop.sock.sendall(f"AUTH OAUTHBEARER {response}\r\n".encode("ascii"))
        assert pop.file.readline().startswith(b"+OK")
        assert pop.stat()[0] == 0
    finally:
        pop.quit()


def test_app_token_for_an_ungranted_mailbox_is_refused(dovecot_for_idp: DovecotServer,
                                                       idp: IdentityProvider,
                                                       providers: TokenProviders,
                                                       app_mailbox: MailboxConfig,
                                                       make_mailbox: MailboxFactory) -> None:
    other = make_mailbox("oauth2-app", name="alice-app", username="alice@example.test")
    login = credentials_for(other, providers)

    with _imap(dovecot_for_idp) as client, pytest.raises(LoginError) as refused:
        client.oauth2_login(login.username, login.secret.reveal())

    error = diagnose_login_failure(str(refused.value), other, token=login.secret)
    assert "-ImapEnabled $true" in error.fix and login.secret.reveal() not in str(error)
