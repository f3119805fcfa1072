"""Mailbox authentication: passwords, Microsoft 365 OAuth2 through MSAL, SASL strings.

The lead's entry points: ``TokenProviders`` (one long-lived MSAL application per
mailbox) and ``credentials_for`` for the sources; ``start_device_sign_in`` /
``finish_device_sign_in`` / ``sign_in_with_browser`` for ``auth login``;
``auth_status`` for ``auth status``; ``diagnose_login_failure`` for ``check``;
``log_in_with_retry`` and ``SaslResponder``, the login IMAP, POP3 and SMTP share.
"""

from ingest.auth.base import AccessToken, AuthKind, AuthSubject, LoginCredentials, TokenProvider
from ingest.auth.claims import decode_claims, explain_token
from ingest.auth.errors import (
    AuthError,
    IdentityProviderUnavailable,
    ReauthRequired,
    TokenCacheError,
)
from ingest.auth.login import LoginRefused, log_in_with_retry
from ingest.auth.login_failures import diagnose_login_failure
from ingest.auth.sasl import Mechanism, SaslResponder, initial_response
from ingest.auth.signin import (
    DeviceCodePrompt,
    SignInResult,
    finish_device_sign_in,
    sign_in_with_browser,
    start_device_sign_in,
)
from ingest.auth.status import AuthStatus, auth_status
from ingest.auth.tokens import TokenProviders, cache_path, credentials_for

__all__ = [
    "AccessToken", "AuthError", "AuthKind", "AuthStatus", "AuthSubject", "DeviceCodePrompt",
    "IdentityProviderUnavailable", "LoginCredentials", "LoginRefused", "Mechanism",
    "ReauthRequired", "SaslResponder", "SignInResult", "TokenCacheError", "TokenProvider",
    "TokenProviders", "auth_status", "cache_path", "credentials_for", "decode_claims",
    "diagnose_login_failure", "explain_token", "finish_device_sign_in", "initial_response",
    "log_in_with_retry", "sign_in_with_browser", "start_device_sign_in",
]
