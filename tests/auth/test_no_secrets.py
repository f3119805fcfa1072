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
from ingest.config.reader import Secret
from tests.auth.certs import make_certificate
from tests.auth.conftest import ALICE, APP_ID, APP_SECRET, MailboxFactory, play_browser
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


def test_certificate_sign_in_logs_no_key_passphrase_or_assertion(
        idp: IdentityProvider, providers: TokenProviders, make_mailbox: MailboxFactory,
        tmp_path: Path, state_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cert = make_certificate(tmp_path, passphrase="pem-key-pass-42")
    idp.register_client(APP_ID, certificate_pem=cert.pem)
    mailbox = make_mailbox("oauth2-app", client_secret=None, certificate=cert.config)

    login = credentials_for(mailbox, providers)

    assert cert.config.key_file is not None
    key_body = cert.config.key_file.read_text().splitlines()[1]
    cache = cache_path(state_dir, mailbox).read_bytes().decode("ascii")
    shown = [caplog.text, repr(mailbox), repr(login), cache]
    for secret in ("pem-key-pass-42", key_body, idp.assertions()[-1]):
        assert all(secret not in text for text in shown)
    assert "POST" in caplog.text or "Cache" in caplog.text  # DEBUG logging was really on
