"""No secret or token in any repr, str, exception message, or log record."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from ingest.auth import (
    TokenProviders,
    credentials_for,
    finish_device_sign_in,
    sign_in_with_browser,
    start_device_sign_in,
)
from ingest.auth.cache import TokenCacheFile
from ingest.auth.tokens import cache_path
from ingest.config import MailboxConfig
from ingest.config_reader import Secret
from tests.auth.conftest import ALICE, APP_SECRET, play_browser
from tests.servers.idp import IdentityProvider


def test_full_flow_leaks_nothing(idp: IdentityProvider, providers: TokenProviders,
                                 app_mailbox: MailboxConfig, delegated_mailbox: MailboxConfig,
                                 state_dir: Path, cache_key: Secret,
                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app_login = credentials_for(app_mailbox, providers)
    provider = providers.for_subject(delegated_mailbox)
    prompt = start_device_sign_in(provider)
    idp.approve_device_code(prompt.user_code, ALICE)
    finish_device_sign_in(provider, prompt)
    provider.refresh_if_idle(timedelta(0))
    user_token = provider.token()
    provider.invalidate(user_token)
    file = TokenCacheFile(cache_path(state_dir, delegated_mailbox), cache_key, subject="t",
                          fix="-")
    contents = file.read()
    idp.revoke_refresh_tokens(ALICE)
    with pytest.raises(Exception) as failure:
        provider.refresh_if_idle(timedelta(0))

    secrets = [APP_SECRET, cache_key.reveal(), app_login.secret.reveal(),
               user_token.secret.reveal(), prompt.flow["device_code"]]
    shown = [repr(app_login), str(app_login), repr(user_token), repr(provider),
             repr(providers), repr(file), repr(contents), repr(prompt),
             repr(app_mailbox), str(failure.value), repr(failure.value), caplog.text]
    for text in shown:
        for secret in secrets:
            assert secret not in text
    assert "ackmail auth login alice" in str(failure.value)


def test_browser_sign_in_logs_no_code_or_verifier(idp: IdentityProvider,
                                                  providers: TokenProviders,
                                                  delegated_mailbox: MailboxConfig,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    sign_in_with_browser(providers.for_subject(delegated_mailbox),
                         lambda url: play_browser(idp, url), timeout=10)

    assert "code_verifier" not in caplog.text and '"code":' not in caplog.text
    assert "Cache" in caplog.text or "POST" in caplog.text  # DEBUG logging was really on
