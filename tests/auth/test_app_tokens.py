"""App-only (client credentials) tokens against the real test identity provider over HTTPS."""

from __future__ import annotations

import datetime
import socket
from pathlib import Path

import pytest

from ingest.auth import (
    AuthError,
    IdentityProviderUnavailable,
    ReauthRequired,
    TokenProviders,
    credentials_for,
    decode_claims,
    explain_token,
)
from ingest.config import MailboxConfig
from ingest.config.reader import Secret
from ingest.errors import TransientError, UserError
from tests.auth.conftest import APP_ID, SHARED, MailboxFactory
from tests.servers.idp import IdentityProvider

CLIENT_CREDENTIALS = "client_credentials"


def test_first_token_is_an_exchange_app_token(idp: IdentityProvider, providers: TokenProviders,
                                              app_mailbox: MailboxConfig) -> None:
    login = credentials_for(app_mailbox, providers)

    claims = decode_claims(login.secret)
    assert (login.kind, login.username) == ("xoauth2", SHARED)
    assert claims["idtyp"] == "app" and claims["appid"] == APP_ID
    assert "IMAP.AccessAsApp" in claims["roles"]
    assert claims["aud"] == "https://outlook.office365.com" and claims["iss"] == idp.issuer
    assert explain_token(claims, app_mailbox) == []
    assert len(idp.requests(CLIENT_CREDENTIALS)) == 1


def test_cached_token_is_reused_without_a_network_call(
        idp: IdentityProvider, providers: TokenProviders, app_mailbox: MailboxConfig) -> None:
    provider = providers.for_subject(app_mailbox)
    first = provider.token()
    seen = len(idp.requests())

    second = provider.token()

    assert second.secret.reveal() == first.secret.reveal()
    assert (first.from_cache, second.from_cache) == (False, True)
    assert len(idp.requests()) == seen
    assert providers.for_subject(app_mailbox) is provider  # one long-lived app per mailbox


def test_another_process_reuses_the_saved_token(idp: IdentityProvider, state_dir: Path,
                                                cache_key: Secret, providers: TokenProviders,
                                                app_mailbox: MailboxConfig) -> None:
    first = providers.for_subject(app_mailbox).token()

    again = TokenProviders(state_dir, cache_key).for_subject(app_mailbox).token()

    assert again.secret.reveal() == first.secret.reveal() and again.from_cache
    assert len(idp.requests(CLIENT_CREDENTIALS)) == 1


def test_token_near_expiry_is_refreshed_before_use(idp: IdentityProvider,
                                                   providers: TokenProviders,
                                                   make_mailbox: MailboxFactory) -> None:
    idp.register_client(APP_ID, secret="app-secret-value-Q~7yZ")
    idp.token_lifetime = 1800  # MSAL itself treats < 5 min as expired; the margin is ours
    provider = providers.for_subject(make_mailbox("oauth2-app", refresh_margin_seconds=3600))
    first = provider.token()
    assert len(idp.requests(CLIENT_CREDENTIALS)) == 1  # a fresh token is not refreshed again

    second = provider.token()

    assert second.secret.reveal() != first.secret.reveal() and not second.from_cache
    assert len(idp.requests(CLIENT_CREDENTIALS)) == 2


def test_invalidate_makes_the_next_call_fetch_a_new_token(
        idp: IdentityProvider, providers: TokenProviders, app_mailbox: MailboxConfig) -> None:
    provider = providers.for_subject(app_mailbox)
    rejected = provider.token()

    provider.invalidate(rejected)
    fresh = provider.token()

    assert fresh.secret.reveal() != rejected.secret.reveal()
    assert len(idp.requests(CLIENT_CREDENTIALS)) == 2


@pytest.mark.parametrize(("code", "fix_words"), [
    (7000222, "client_secret_expires"), (7000215, "Secret ID")])
def test_bad_client_secret_is_explained(idp: IdentityProvider, providers: TokenProviders,
                                        app_mailbox: MailboxConfig, code: int,
                                        fix_words: str) -> None:
    idp.fail_next(1, code)

    with pytest.raises(AuthError) as caught:
        credentials_for(app_mailbox, providers)

    error = caught.value
    assert not isinstance(error, ReauthRequired)  # there is no user sign-in to repeat
    assert error.code == f"AADSTS{code}" and fix_words in error.fix
    assert error.correlation_id and error.correlation_id in str(error)
    assert "'shared'" in str(error) and "app-secret-value" not in str(error)


def test_expired_secret_from_registration(idp: IdentityProvider, providers: TokenProviders,
                                          make_mailbox: MailboxFactory) -> None:
    yesterday = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    idp.register_client(APP_ID, secret="app-secret-value-Q~7yZ", secret_expires=yesterday)

    with pytest.raises(AuthError, match="client secret has expired"):
        providers.for_subject(make_mailbox("oauth2-app")).token()


def test_untrusted_tls_certificate_says_set_ca_file(providers: TokenProviders,
                                                    app_mailbox: MailboxConfig,
                                                    make_mailbox: MailboxFactory) -> None:
    # Without ca_file the environment's CA bundle applies, which lacks the test CA.
    with pytest.raises(AuthError) as caught:
        credentials_for(make_mailbox("oauth2-app", ca_file=None), providers)

    assert caught.value.code == "tls" and "ca_file" in caught.value.fix


def test_unreachable_identity_provider_is_transient(providers: TokenProviders,
                                                    make_mailbox: MailboxFactory) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = make_mailbox("oauth2-app", authority=f"https://127.0.0.1:{port}")

    with pytest.raises(IdentityProviderUnavailable) as caught:
        credentials_for(mailbox, providers)

    assert isinstance(caught.value, TransientError) and caught.value.code == "network"


def test_unknown_tenant_is_a_settings_error(idp: IdentityProvider, providers: TokenProviders,
                                            app_mailbox: MailboxConfig,
                                            make_mailbox: MailboxFactory) -> None:
    with pytest.raises(AuthError, match="tenant_id") as caught:
        credentials_for(make_mailbox("oauth2-app", tenant_id="no-such-tenant"), providers)

    assert isinstance(caught.value, UserError) and caught.value.code == "authority"
