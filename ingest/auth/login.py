"""Logging in with the configured credentials, the same way for IMAP, POP3 and SMTP.

A refused token is dropped from the cache and the login tried once more with a fresh
one, since Exchange may reject a token the cache still considers valid (revoked
session, policy change). A refused password is not tried again. What a refusal means
is the caller's to say: a mailbox's diagnosis (``ingest.sources.connect``), SMTP's
reply (``ingest.outgoing.smtp``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ingest.auth.base import AccessToken, LoginCredentials
from ingest.auth.tokens import TokenProviders, credentials_for
from ingest.config import MailboxConfig, SmtpConfig
from ingest.config.reader import Secret
from ingest.timeutil import utcnow

T = TypeVar("T")


class LoginRefused(Exception):
    """The server refused the credentials: the server's text (never a secret), and the
    token refused last, if it was a token (its claims explain a refusal)."""

    def __init__(self, text: str, token: Secret | None = None) -> None:
        super().__init__(text)
        self.token = token


def log_in_with_retry(subject: MailboxConfig | SmtpConfig, providers: TokenProviders,
                      authenticate: Callable[[LoginCredentials], T]) -> T:
    """Get ``subject``'s credentials and log in with ``authenticate``, which raises
    ``LoginRefused`` when the server says no; a refused token is dropped and the login
    tried once more with a fresh one.

    Raises ``LoginRefused`` (with ``token`` set for a token) when the server refuses,
    and whatever ``credentials_for`` raises (ReauthRequired...).
    """
    credentials = credentials_for(subject, providers)
    try:
        return authenticate(credentials)
    except LoginRefused:
        if credentials.kind != "xoauth2":
            raise
    providers.for_subject(subject).invalidate(AccessToken(credentials.secret, utcnow(), True))
    credentials = credentials_for(subject, providers)
    try:
        return authenticate(credentials)
    except LoginRefused as refused:
        raise LoginRefused(str(refused), credentials.secret) from None
