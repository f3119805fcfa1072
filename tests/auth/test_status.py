"""``auth_status``: read from the cache file alone, with warnings that say what to do."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from ingest.auth import AuthKind, TokenProvider, TokenProviders, auth_status
from ingest.config import MailboxConfig
from ingest.config.reader import Secret
from ingest.timeutil import utcnow
from tests.auth.conftest import ALICE, SHARED, MailboxFactory
from tests.servers.idp import IdentityProvider


def test_delegated_status_after_sign_in_needs_no_network(
        idp: IdentityProvider, signed_in: TokenProvider, delegated_mailbox: MailboxConfig,
        state_dir: Path, cache_key: Secret) -> None:
    token = signed_in.token()
    seen = len(idp.requests())

    status = auth_status(delegated_mailbox, state_dir=state_dir, cache_key=cache_key)

    assert len(idp.requests()) == seen
    assert (status.kind, status.account, status.signed_in) == (AuthKind.DELEGATED, ALICE, True)
    assert status.access_token_expires is not None
    assert abs((status.access_token_expires - token.expires_at).total_seconds()) < 5
    assert status.last_refresh is not None and status.refresh_token_idle_days == 0.0
    assert status.warnings == ()


def test_idle_refresh_token_is_warned_about(signed_in: TokenProvider,
                                            delegated_mailbox: MailboxConfig, state_dir: Path,
                                            cache_key: Secret) -> None:
    later = utcnow() + timedelta(days=80)

    status = auth_status(delegated_mailbox, state_dir=state_dir, cache_key=cache_key, now=later)

    assert status.refresh_token_idle_days is not None and status.refresh_token_idle_days >= 80
    assert any("idle 80 days" in text and "90" in text for text in status.warnings)


def test_not_signed_in(delegated_mailbox: MailboxConfig, state_dir: Path,
                       cache_key: Secret) -> None:
    status = auth_status(delegated_mailbox, state_dir=state_dir, cache_key=cache_key)

    assert not status.signed_in and status.account is None
    assert status.warnings == (f"no sign-in is stored for {ALICE}: run ackmail auth login alice",)


@pytest.mark.parametrize(("days_left", "warning"), [
    (31, None), (30, "expires on {day}, in 30 days"), (0, "expires on {day}, in 0 days"),
    (-3, "expired on {day} (3 days ago)")])
def test_client_secret_expiry_warning(make_mailbox: MailboxFactory, state_dir: Path,
                                      cache_key: Secret, days_left: int,
                                      warning: str | None) -> None:
    today = date(2027, 3, 1)
    day = today + timedelta(days=days_left)
    mailbox = make_mailbox("oauth2-app", client_secret_expires=day)
    now = utcnow().replace(year=2027, month=3, day=1)

    status = auth_status(mailbox, state_dir=state_dir, cache_key=cache_key, now=now)

    assert status.client_secret_expires == day and status.account == SHARED
    texts = [text for text in status.warnings if "client secret" in text]
    if warning is None:
        assert texts == []
    else:
        assert len(texts) == 1 and warning.format(day=day) in texts[0]
        assert "client_secret_expires" in texts[0]


def test_app_status_shows_the_cached_token(idp: IdentityProvider, providers: TokenProviders,
                                           app_mailbox: MailboxConfig, state_dir: Path,
                                           cache_key: Secret) -> None:
    before = auth_status(app_mailbox, state_dir=state_dir, cache_key=cache_key)
    token = providers.for_subject(app_mailbox).token()

    after = auth_status(app_mailbox, state_dir=state_dir, cache_key=cache_key)

    assert (before.signed_in, before.access_token_expires) == (False, None)
    assert after.signed_in and after.access_token_expires is not None
    assert abs((after.access_token_expires - token.expires_at).total_seconds()) < 5
    assert after.refresh_token_idle_days is None  # app-only has no refresh token


def test_unreadable_cache_is_a_warning(signed_in: TokenProvider,
                                       delegated_mailbox: MailboxConfig,
                                       state_dir: Path) -> None:
    status = auth_status(delegated_mailbox, state_dir=state_dir,
                         cache_key=Secret("another key", "test"))

    assert not status.signed_in
    assert len(status.warnings) == 1 and "cache_key" in status.warnings[0]


def test_basic_auth_status(state_dir: Path) -> None:
    box = MailboxConfig(name="legacy", protocol="pop3", host="127.0.0.1", username="bob@x.test",
                        auth="basic", password=Secret("bobpass", "test"))

    status = auth_status(box, state_dir=state_dir, cache_key=None)

    assert (status.kind, status.account, status.signed_in) == (AuthKind.BASIC, "bob@x.test", True)
    assert "bobpass" not in repr(status)
