"""SMTP submission against the real aiosmtpd server: TLS modes, AUTH kinds, backup, errors."""

from __future__ import annotations

import secrets
from email.message import EmailMessage
from pathlib import Path

import pytest

from ingest.auth import TokenProviders
from ingest.config import OAuthConfig
from ingest.config.reader import Secret
from ingest.errors import PermanentError, TransientError
from ingest.outgoing.smtp import NOTIFICATION_HEADERS, Mailer, build_message
from tests.servers.idp import IdentityProvider
from tests.servers.rules_fixtures import SMTP_USER, SmtpFactory, smtp_config
from tests.servers.smtp import BearerCheck, SmtpServer
from tests.servers.tls import TestPki

APP_ID = "7b0c1a52-6b1e-4d8a-9c2f-0ac0a11a0031"
APP_SECRET = "smtp-app-secret-Q~9"


@pytest.fixture
def providers(tmp_path: Path) -> TokenProviders:
    return TokenProviders(tmp_path / "state", Secret(secrets.token_urlsafe(32), "test"),
                          timeout=10.0)


def _message(to: str = "ops@example.test") -> EmailMessage:
    return build_message(sender=SMTP_USER, to=[to], subject="Test ✓", text="Hello\n",
                         headers=NOTIFICATION_HEADERS)


def test_starttls_and_auth_plain_deliver_the_message(
    smtp_server: SmtpServer, smtp_pki: TestPki, providers: TokenProviders
) -> None:
    mailer = Mailer(smtp_config(smtp_server, smtp_pki), providers)

    used = mailer.send(_message())

    assert used == f"127.0.0.1:{smtp_server.port}"
    [mail] = smtp_server.received
    assert mail.tls and mail.login is not None
    assert (mail.login.mechanism, mail.login.user) == ("PLAIN", SMTP_USER)
    assert mail.rcpt_tos == ("ops@example.test",)
    message = mail.message()
    assert message["Subject"] == "Test ✓"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Ackmail"]
    assert message["Message-ID"].startswith("<ackmail.")


def test_auth_login_when_the_server_offers_only_login(
    make_smtp_server: SmtpFactory, smtp_pki: TestPki, providers: TokenProviders
) -> None:
    server = make_smtp_server(auth_exclude=("PLAIN",))
    Mailer(smtp_config(server, smtp_pki), providers).send(_message())
    assert [m.login.mechanism for m in server.received if m.login] == ["LOGIN"]


def test_implicit_tls(
    make_smtp_server: SmtpFactory, smtp_pki: TestPki, providers: TokenProviders
) -> None:
    server = make_smtp_server(implicit_tls=True)
    Mailer(smtp_config(server, smtp_pki), providers).send(_message())
    assert len(server.received) == 1 and server.received[0].tls


def test_wrong_password_is_permanent_and_names_the_server(
    smtp_server: SmtpServer, smtp_pki: TestPki, providers: TokenProviders
) -> None:
    config = smtp_config(smtp_server, smtp_pki, password=Secret("wrong-password-1", "test"))
    with pytest.raises(PermanentError) as failure:
        Mailer(config, providers).send(_message())
    assert "535" in str(failure.value) and str(smtp_server.port) in str(failure.value)
    assert "wrong-password-1" not in str(failure.value)
    assert smtp_server.received == []


def test_untrusted_certificate_is_refused(
    smtp_server: SmtpServer, smtp_pki: TestPki, providers: TokenProviders
) -> None:
    config = smtp_config(smtp_server, smtp_pki, ca_file=None)
    with pytest.raises(TransientError, match=r"TLS failed: .*set ca_file to"):
        Mailer(config, providers).send(_message())
    assert smtp_server.received == []


def test_backup_takes_over_when_the_primary_defers(
    make_smtp_server: SmtpFactory, smtp_pki: TestPki, providers: TokenProviders
) -> None:
    primary, backup = make_smtp_server(), make_smtp_server()
    primary.fail_next(1)
    config = smtp_config(primary, smtp_pki, backup=smtp_config(backup, smtp_pki))

    used = Mailer(config, providers).send(_message())

    assert used == f"127.0.0.1:{backup.port}"
    assert (len(primary.received), len(backup.received)) == (0, 1)


def test_backup_takes_over_when_the_primary_is_down(
    make_smtp_server: SmtpFactory, smtp_pki: TestPki, providers: TokenProviders
) -> None:
    primary, backup = make_smtp_server(), make_smtp_server()
    primary.stop()
    config = smtp_config(primary, smtp_pki, backup=smtp_config(backup, smtp_pki))
    Mailer(config, providers).send(_message())
    assert len(backup.received) == 1


def test_both_servers_deferring_is_transient(
    make_smtp_server: SmtpFactory, smtp_pki: TestPki, providers: TokenProviders
) -> None:
    primary, backup = make_smtp_server(), make_smtp_server()
    primary.fail_next(1)
    backup.fail_next(1, "554 5.7.1 Message rejected")
    config = smtp_config(primary, smtp_pki, backup=smtp_config(backup, smtp_pki))
    with pytest.raises(TransientError) as failure:
        Mailer(config, providers).send(_message())
    assert "451" in str(failure.value) and "554" in str(failure.value)


def _oauth_config(idp: IdentityProvider) -> OAuthConfig:
    return OAuthConfig(tenant_id=idp.tenant, client_id=APP_ID,
                       client_secret=Secret(APP_SECRET, "test"), authority=idp.base_url,
                       ca_file=Path(idp.ca_pem))


def test_xoauth2_with_an_app_token_from_the_identity_provider(
    idp: IdentityProvider, make_smtp_server: SmtpFactory, smtp_pki: TestPki,
    providers: TokenProviders,
) -> None:
    idp.register_client(APP_ID, secret=APP_SECRET)
    server = make_smtp_server(bearer=BearerCheck(idp.public_key_pem, idp.issuer), users={})
    config = smtp_config(server, smtp_pki, auth="oauth2-app", password=None,
                         oauth=_oauth_config(idp))

    Mailer(config, providers).send(_message())

    [mail] = server.received
    assert mail.login is not None and (mail.login.mechanism, mail.login.user) == (
        "XOAUTH2", SMTP_USER)
    assert server.refused_tokens == []
    assert len(idp.requests("client_credentials")) == 1


def test_a_refused_token_is_dropped_and_the_login_retried_once_fresh(
    idp: IdentityProvider, make_smtp_server: SmtpFactory, smtp_pki: TestPki,
    providers: TokenProviders,
) -> None:
    idp.register_client(APP_ID, secret=APP_SECRET)
    server = make_smtp_server(bearer=BearerCheck(idp.public_key_pem, "https://other/v2.0"))
    config = smtp_config(server, smtp_pki, auth="oauth2-app", password=None,
                         oauth=_oauth_config(idp))
    mailer = Mailer(config, providers)

    with pytest.raises(TransientError, match="refused the OAuth2 token"):
        mailer.send(_message())

    assert len(server.refused_tokens) == 2 and "issuer" in server.refused_tokens[0].lower()
    assert len(idp.requests("client_credentials")) == 2  # the cached token was dropped
    assert server.received == []
