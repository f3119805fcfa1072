"""Delegated sign-in and the life of a user's grant, against the real test identity provider."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from ingest.auth import (
    AuthError,
    ReauthRequired,
    TokenProvider,
    TokenProviders,
    credentials_for,
    decode_claims,
    explain_token,
    finish_device_sign_in,
    sign_in_with_browser,
    start_device_sign_in,
)
from ingest.auth.cache import TokenCacheFile
from ingest.auth.tokens import cache_path
from ingest.config import MailboxConfig
from ingest.config.reader import Secret
from ingest.errors import ConfigError
from ingest.timeutil import utcnow
from tests.auth.conftest import (
    ALICE,
    APP_ID,
    MailboxFactory,
    cached_refresh_tokens,
    play_browser,
    sign_in_by_device_code,
)
from tests.servers.idp import IdentityProvider

REFRESH = "refresh_token"


def test_device_code_sign_in_stores_a_working_grant(idp: IdentityProvider,
                                                   providers: TokenProviders,
                                                   delegated_mailbox: MailboxConfig) -> None:
    provider = providers.for_subject(delegated_mailbox)
    prompt = start_device_sign_in(provider)
    assert prompt.user_code in prompt.message and "device_code" not in repr(prompt)
    idp.approve_device_code(prompt.user_code, ALICE)

    result = finish_device_sign_in(provider, prompt)
    login = credentials_for(delegated_mailbox, providers)

    claims = decode_claims(login.secret)
    assert result.account == ALICE and login.username == ALICE
    assert claims["upn"] == ALICE and "IMAP.AccessAsUser.All" in claims["scp"].split()
    assert explain_token(claims, delegated_mailbox) == []


def test_browser_sign_in_with_pkce(idp: IdentityProvider, providers: TokenProviders,
                                   delegated_mailbox: MailboxConfig) -> None:
    visited: list[str] = []

    def open_url(url: str) -> None:
        visited.append(url)
        assert play_browser(idp, url) == 200

    result = sign_in_with_browser(providers.for_subject(delegated_mailbox), open_url,
                                  timeout=10)

    assert result.account == ALICE
    assert "code_challenge_method=S256" in visited[0]
    assert [r.grant_type for r in idp.requests() if r.grant_type] == ["authorization_code"]
    assert decode_claims(providers.for_subject(delegated_mailbox).token().secret)["upn"] == ALICE


def test_browser_signed_in_as_another_account_is_refused(
        idp: IdentityProvider, signed_in: TokenProvider, providers: TokenProviders,
        delegated_mailbox: MailboxConfig, state_dir: Path, cache_key: Secret) -> None:
    before = cached_refresh_tokens(state_dir, delegated_mailbox, cache_key)
    idp.browser_user = "bob@example.test"  # a cookie from another sign-in answers silently

    with pytest.raises(AuthError) as caught:
        sign_in_with_browser(signed_in, lambda url: play_browser(idp, url), timeout=10)

    assert caught.value.code == "wrong-account"
    assert "bob@example.test" in str(caught.value) and ALICE in caught.value.fix
    assert cached_refresh_tokens(state_dir, delegated_mailbox, cache_key) == before
    assert decode_claims(signed_in.token().secret)["upn"] == ALICE  # the old grant still works


def test_cached_token_is_reused_without_a_network_call(idp: IdentityProvider,
                                                       signed_in: TokenProvider) -> None:
    first = signed_in.token()
    seen = len(idp.requests())

    second = signed_in.token()

    assert second.from_cache and second.secret.reveal() == first.secret.reveal()
    assert len(idp.requests()) == seen


def test_token_near_expiry_is_refreshed(idp: IdentityProvider, providers: TokenProviders,
                                        make_mailbox: MailboxFactory) -> None:
    idp.register_client("pub-margin")
    idp.token_lifetime = 1800
    mailbox = make_mailbox("oauth2-delegated", client_id="pub-margin",
                           refresh_margin_seconds=3600)
    provider = providers.for_subject(mailbox)
    sign_in_by_device_code(idp, provider)

    token = provider.token()

    assert not token.from_cache and len(idp.requests(REFRESH)) == 1


def test_rotated_refresh_token_is_saved_for_the_next_instance(
        idp: IdentityProvider, signed_in: TokenProvider, delegated_mailbox: MailboxConfig,
        state_dir: Path, cache_key: Secret) -> None:
    assert signed_in.refresh_if_idle(timedelta(0))  # rotates: the sign-in's token is now void
    stored = cached_refresh_tokens(state_dir, delegated_mailbox, cache_key)
    assert stored == idp.live_refresh_tokens(ALICE)

    second_instance = TokenProviders(state_dir, cache_key).for_subject(delegated_mailbox)

    assert second_instance.refresh_if_idle(timedelta(0))
    assert len(idp.requests(REFRESH)) == 2


@pytest.mark.parametrize(("break_grant", "code"), [
    (lambda idp: idp.revoke_refresh_tokens(ALICE), "AADSTS50173"),
    (lambda idp: idp.fail_next(1, 700082), "AADSTS700082"),
    (lambda idp: idp.fail_next(1, 65001), "AADSTS65001"),
])
def test_broken_grant_raises_reauth_required(idp: IdentityProvider, signed_in: TokenProvider,
                                             break_grant: object, code: str) -> None:
    break_grant(idp)  # type: ignore[operator]

    with pytest.raises(ReauthRequired) as caught:
        signed_in.refresh_if_idle(timedelta(0))

    error = caught.value
    assert error.command == "ackmail auth login alice" and error.command in str(error)
    assert error.code == code and error.subject == "mailbox 'alice'" and error.cause


def test_without_sign_in_reauth_is_required(providers: TokenProviders,
                                            delegated_mailbox: MailboxConfig) -> None:
    with pytest.raises(ReauthRequired, match="ackmail auth login alice"):
        credentials_for(delegated_mailbox, providers)


def test_refresh_if_idle_uses_the_recorded_last_refresh(
        idp: IdentityProvider, signed_in: TokenProvider, delegated_mailbox: MailboxConfig,
        state_dir: Path, cache_key: Secret) -> None:
    assert not signed_in.refresh_if_idle(timedelta(days=14))
    assert idp.requests(REFRESH) == []
    file = TokenCacheFile(cache_path(state_dir, delegated_mailbox), cache_key, subject="t",
                          fix="-")
    contents = file.read()
    assert contents is not None and contents.meta.last_refresh is not None
    old = utcnow() - timedelta(days=15)
    file.write(dataclasses.replace(contents, meta=dataclasses.replace(contents.meta,
                                                                      last_refresh=old)))

    assert signed_in.refresh_if_idle(timedelta(days=14))  # notices the file changed

    assert len(idp.requests(REFRESH)) == 1
    refreshed = file.read()
    assert refreshed is not None and refreshed.meta.last_refresh is not None
    assert refreshed.meta.last_refresh > old + timedelta(days=14)


def test_invalidate_drops_the_rejected_token(idp: IdentityProvider,
                                             signed_in: TokenProvider) -> None:
    rejected = signed_in.token()

    signed_in.invalidate(rejected)
    fresh = signed_in.token()

    assert fresh.secret.reveal() != rejected.secret.reveal()
    assert len(idp.requests(REFRESH)) == 1


def test_device_code_with_public_flows_disabled(idp: IdentityProvider,
                                                providers: TokenProviders,
                                                make_mailbox: MailboxFactory) -> None:
    idp.register_client(APP_ID, secret="only-the-server-knows")
    provider = providers.for_subject(make_mailbox("oauth2-delegated", client_id=APP_ID))
    prompt = start_device_sign_in(provider)
    idp.approve_device_code(prompt.user_code, ALICE)

    with pytest.raises(AuthError) as caught:
        finish_device_sign_in(provider, prompt)

    assert caught.value.code == "AADSTS7000218" and "Allow public client flows" in caught.value.fix


def test_app_mailbox_cannot_sign_in_interactively(providers: TokenProviders,
                                                  app_mailbox: MailboxConfig) -> None:
    with pytest.raises(ConfigError, match="oauth2-delegated"):
        start_device_sign_in(providers.for_subject(app_mailbox))
