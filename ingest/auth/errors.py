"""Typed authentication errors: what failed, for which mailbox, why, and the fix.

The messages are user-facing and never contain a secret or token. MSAL's error
dicts, HTTP failures and server login refusals are translated into these at the
auth boundary (see ``diagnose.py``), so callers only ever catch ackmail errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingest.errors import TransientError, UserError


class AuthError(UserError):
    """Authentication for one mailbox failed in a way a person has to fix."""

    def __init__(self, subject: str, cause: str, fix: str, *, code: str | None = None,
                 correlation_id: str | None = None,
                 claims: Mapping[str, Any] | None = None) -> None:
        self.subject = subject
        self.cause = cause
        self.fix = fix
        self.code = code
        self.correlation_id = correlation_id
        # The refused token's identifying claims (never the token), for the auth.failed event.
        self.claims = dict(claims or {})
        super().__init__(_sentence(subject, cause, fix, code, correlation_id))


class ReauthRequired(AuthError):
    """The stored delegated sign-in no longer works; ``command`` signs in again."""

    def __init__(self, subject: str, cause: str, command: str, *, fix: str | None = None,
                 code: str | None = None, correlation_id: str | None = None) -> None:
        self.command = command
        super().__init__(subject, cause, fix or f"sign in again with: {command}", code=code,
                         correlation_id=correlation_id)


class IdentityProviderUnavailable(TransientError):
    """The identity provider could not be reached or answered with a server fault."""

    def __init__(self, subject: str, cause: str, *, code: str | None = None,
                 correlation_id: str | None = None) -> None:
        self.subject = subject
        self.cause = cause
        self.code = code
        self.correlation_id = correlation_id
        super().__init__(_sentence(subject, cause, "ackmail retries later; check the network "
                                   "path to the authority if it persists", code, correlation_id))


class TokenCacheError(AuthError):
    """The encrypted token cache cannot be read (wrong key, damaged file)."""


def _sentence(subject: str, cause: str, fix: str, code: str | None,
              correlation_id: str | None) -> str:
    detail = f" [{code}]" if code else ""
    trace = f" (correlation id {correlation_id})" if correlation_id else ""
    return f"{subject}: {cause}{detail}; {fix}{trace}"
