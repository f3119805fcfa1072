"""Server login refusals (IMAP, POP3, SMTP) explained with a cause and a fix."""

from __future__ import annotations

import pytest

from ingest.auth import TokenProvider, diagnose_login_failure
from ingest.config import MailboxConfig
from ingest.config.reader import Secret
from tests.auth.conftest import ALICE, MailboxFactory
from tests.servers.idp import IdentityProvider


def test_service_principal_not_connected(idp: IdentityProvider,
                                         make_mailbox: MailboxFactory) -> None:
    error = diagnose_login_failure("NO AUTHENTICATE failed: User is authenticated but not "
                                   "connected.", make_mailbox("oauth2-app"))

    assert "service principal" in error.cause
    assert "New-ServicePrincipal" in error.fix and "-AccessRights FullAccess" in error.fix


@pytest.mark.parametrize(("protocol", "switch"), [
    ("imap", "-ImapEnabled $true"), ("pop3", "-PopEnabled $true"),
    ("smtp", "-SmtpClientAuthenticationDisabled $false")])
def test_protocol_disabled_for_the_mailbox(idp: IdentityProvider, make_mailbox: MailboxFactory,
                                           protocol: str, switch: str) -> None:
    mailbox = make_mailbox("oauth2-delegated", protocol=protocol)

    error = diagnose_login_failure("[AUTHENTICATIONFAILED] Authentication failed.", mailbox)

    assert f"Set-CASMailbox -Identity {ALICE} {switch}" in error.fix


def test_smtp_auth_disabled_text(idp: IdentityProvider, make_mailbox: MailboxFactory) -> None:
    error = diagnose_login_failure(
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
        "the Tenant.", make_mailbox("oauth2-delegated", protocol="smtp"))

    assert "SMTP AUTH is disabled" in error.cause


def test_token_of_another_account_is_the_answer(idp: IdentityProvider,
                                                signed_in: TokenProvider,
                                                make_mailbox: MailboxFactory) -> None:
    token = signed_in.token().secret  # alice's token, used for carol's mailbox
    carol = make_mailbox("oauth2-delegated", name="carol", username="carol@example.test")

    error = diagnose_login_failure("AUTHENTICATE failed.", carol, token=token)

    assert f"upn {ALICE} differs from mailbox carol@example.test" in error.cause
    assert "ackmail auth login carol" in error.fix and token.reveal() not in str(error)


def test_basic_auth_refused() -> None:
    box = MailboxConfig(name="legacy", protocol="imap", host="127.0.0.1", username="bob@x.test",
                        auth="basic", password=Secret("bobpass", "test"))

    error = diagnose_login_failure("NO [AUTHENTICATIONFAILED] Authentication failed.", box)

    assert "user name or password" in error.cause and "oauth2" in error.fix
    assert "bobpass" not in str(error)
