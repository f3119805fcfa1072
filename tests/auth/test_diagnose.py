"""AADSTS errors become typed exceptions with a cause and a fix (table in diagnose.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ingest.auth import AuthError, IdentityProviderUnavailable, ReauthRequired, TokenProvider
from ingest.auth.base import AuthSubject
from ingest.auth.diagnose import AADSTS_TABLE, Remedy, aadsts_codes, diagnose, error_for
from ingest.config import MailboxConfig
from tests.auth.conftest import MailboxFactory
from tests.servers.idp import IdentityProvider

# (code, class expected for a delegated mailbox, words the fix must hold)
DELEGATED_CASES = [
    (700082, ReauthRequired, "ackmail auth login alice"),
    (50173, ReauthRequired, "ackmail auth login alice"),
    (70043, ReauthRequired, "sign-in frequency policy"),
    (50079, ReauthRequired, "MFA"),
    (50057, AuthError, "unlocks/enables"),
    (7000229, AuthError, "Enterprise applications"),
    (65001, ReauthRequired, "consent"),
    (50076, ReauthRequired, "MFA"),
    (50126, ReauthRequired, "password"),
    (53003, AuthError, "Sign-in logs"),
    (90002, AuthError, "tenant_id"),
    (700016, AuthError, "client_id"),
]


@pytest.mark.parametrize(("code", "kind", "fix_words"), DELEGATED_CASES)
def test_refresh_failures_from_the_provider(idp: IdentityProvider, signed_in: TokenProvider,
                                            code: int, kind: type[AuthError],
                                            fix_words: str) -> None:
    idp.fail_next(1, code)

    with pytest.raises(AuthError) as caught:
        signed_in.refresh_if_idle(timedelta(0))

    error = caught.value
    assert type(error) is kind and error.code == f"AADSTS{code}"
    assert fix_words in error.fix and error.correlation_id
    assert str(error).startswith("mailbox 'alice': ")


def test_app_only_never_asks_for_a_sign_in(idp: IdentityProvider,
                                           make_mailbox: MailboxFactory) -> None:
    subject = AuthSubject.of_mailbox(make_mailbox("oauth2-app"))

    error = error_for({"error": "invalid_grant", "error_codes": [50173]}, subject)

    assert type(error) is AuthError and "auth login" not in str(error)


@pytest.fixture
def alice(idp: IdentityProvider, make_mailbox: MailboxFactory) -> MailboxConfig:
    return make_mailbox("oauth2-delegated")


def test_code_is_found_in_the_description(alice: MailboxConfig) -> None:
    result = {"error": "invalid_client",
              "error_description": "AADSTS7000222: The provided client secret keys are expired."}

    assert aadsts_codes(result) == [7000222]
    assert diagnose(result).cause == "the client secret has expired"


def test_unknown_code_keeps_the_providers_sentence(alice: MailboxConfig) -> None:
    result = {"error": "invalid_request", "error_codes": [123456],
              "error_description": "AADSTS123456: Something new happened. Trace ID: x"}

    error = error_for(result, AuthSubject.of_mailbox(alice))

    assert error.code == "AADSTS123456" and "Something new happened" in str(error)
    assert "Trace ID" not in str(error)


@pytest.mark.parametrize("result", [
    {"error": "temporarily_unavailable"}, {"error": "server_error", "error_codes": [90033]}])
def test_provider_faults_are_transient(alice: MailboxConfig, result: dict[str, object]) -> None:
    assert isinstance(error_for(result, AuthSubject.of_mailbox(alice)),
                      IdentityProviderUnavailable)


def test_invalid_grant_without_code_needs_a_sign_in(alice: MailboxConfig) -> None:
    error = error_for({"error": "invalid_grant"}, AuthSubject.of_mailbox(alice))

    assert isinstance(error, ReauthRequired) and error.command == "ackmail auth login alice"


def test_table_has_no_duplicate_codes_and_every_fix_formats(alice: MailboxConfig) -> None:
    codes = [code for row in AADSTS_TABLE for code in row.codes]
    subject = AuthSubject.of_mailbox(alice)

    assert len(codes) == len(set(codes))
    for row in AADSTS_TABLE:
        assert row.remedy is Remedy.RETRY or "{" not in str(
            error_for({"error": "x", "error_codes": [row.codes[0]]}, subject))
