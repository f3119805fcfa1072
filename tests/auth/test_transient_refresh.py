"""A transient failure on refresh is told apart from an expired grant and keeps the refresh token.

MSAL 1.39 wraps its HTTP client in a throttle cache (``msal/throttled_http_client.py``): a 5xx
or 429 is replayed for its ``Retry-After`` (5 s by default), and an HTTP 400 answer to the same
request body for 60 s, without reaching the provider. So the tests inject each fault once and
show the replay, then retry after the throttle window (a short ``Retry-After``) or from a new
process (a fresh MSAL application, as a restarted poller has), which must succeed with the
refresh token that was kept.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from ingest.auth import IdentityProviderUnavailable, ReauthRequired, TokenProvider, TokenProviders
from ingest.config import MailboxConfig
from ingest.config.reader import Secret
from tests.auth.conftest import ALICE, cached_refresh_tokens
from tests.servers.idp import IdentityProvider

REFRESH = "refresh_token"


def _refresh_fails_transiently(provider: TokenProvider) -> IdentityProviderUnavailable:
    with pytest.raises(IdentityProviderUnavailable) as caught:
        provider.refresh_if_idle(timedelta(0))
    return caught.value


def test_a_server_fault_is_replayed_by_msal_then_the_kept_token_refreshes(
        idp: IdentityProvider, signed_in: TokenProvider, delegated_mailbox: MailboxConfig,
        state_dir: Path, cache_key: Secret) -> None:
    stored = cached_refresh_tokens(state_dir, delegated_mailbox, cache_key)
    idp.fail_next(1, 90033, status=503, retry_after=1)

    first = _refresh_fails_transiently(signed_in)
    sent = len(idp.requests(REFRESH))
    replayed = _refresh_fails_transiently(signed_in)  # inside Retry-After: MSAL's cache answers

    assert first.code == "http-503" and "the stored sign-in is kept" in first.cause
    assert replayed.code == "http-503" and len(idp.requests(REFRESH)) == sent
    assert cached_refresh_tokens(state_dir, delegated_mailbox, cache_key) == stored
    time.sleep(1.2)
    assert signed_in.refresh_if_idle(timedelta(0))
    assert len(idp.requests(REFRESH)) == sent + 1
    assert cached_refresh_tokens(state_dir, delegated_mailbox, cache_key) != stored


@pytest.mark.parametrize("error", ["invalid_grant", "temporarily_unavailable"])
def test_a_momentary_aadsts90033_keeps_the_refresh_token(
        idp: IdentityProvider, signed_in: TokenProvider, delegated_mailbox: MailboxConfig,
        state_dir: Path, cache_key: Secret, error: str) -> None:
    stored = cached_refresh_tokens(state_dir, delegated_mailbox, cache_key)
    idp.fail_next(1, 90033, error=error)

    first = _refresh_fails_transiently(signed_in)
    sent = len(idp.requests(REFRESH))
    replayed = _refresh_fails_transiently(signed_in)  # the 400 is replayed for 60 s
    restarted = TokenProviders(state_dir, cache_key, timeout=10.0).for_subject(delegated_mailbox)

    assert (first.code, replayed.code) == ("AADSTS90033", "AADSTS90033")
    assert len(idp.requests(REFRESH)) == sent
    assert cached_refresh_tokens(state_dir, delegated_mailbox, cache_key) == stored
    assert stored[0] in idp.live_refresh_tokens(ALICE)
    assert restarted.refresh_if_idle(timedelta(0))  # a new process refreshes with the kept RT
    assert len(idp.requests(REFRESH)) == sent + 1


def test_an_unreachable_provider_keeps_the_refresh_token(
        idp: IdentityProvider, signed_in: TokenProvider, delegated_mailbox: MailboxConfig,
        state_dir: Path, cache_key: Secret) -> None:
    stored = cached_refresh_tokens(state_dir, delegated_mailbox, cache_key)
    signed_in.session.application()  # discovery done while the provider was up
    idp.stop()

    failure = _refresh_fails_transiently(signed_in)

    assert failure.code == "network"
    assert cached_refresh_tokens(state_dir, delegated_mailbox, cache_key) == stored


def test_a_real_expiry_still_asks_for_a_sign_in(idp: IdentityProvider,
                                                signed_in: TokenProvider) -> None:
    idp.fail_next(1, 700082)

    with pytest.raises(ReauthRequired) as caught:
        signed_in.refresh_if_idle(timedelta(0))

    assert caught.value.code == "AADSTS700082"
