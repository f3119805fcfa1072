"""Contracts of the auth package: auth kinds, who signs in, credentials, token providers."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol
from urllib.parse import quote

from ingest.config import MailboxConfig, OAuthConfig, SmtpConfig, default_scopes
from ingest.config.reader import Secret
from ingest.errors import ConfigError

# MSAL adds these to every user sign-in itself and refuses them as input.
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})
LOGIN_COMMAND = "ackmail auth login {name}"
SMTP_LOGIN_COMMAND = "ackmail auth login --smtp"


class AuthKind(enum.StrEnum):
    """The ``auth`` setting of a mailbox or of ``[smtp]``."""

    BASIC = "basic"
    APP = "oauth2-app"
    DELEGATED = "oauth2-delegated"


@dataclass(frozen=True)
class AuthSubject:
    """Whatever signs in (a mailbox, or the SMTP submission account), in one shape."""

    name: str
    kind: AuthKind
    username: str
    protocol: str
    cache_stem: str
    login_command: str
    oauth: OAuthConfig | None = None
    password: Secret | None = None

    @classmethod
    def of_mailbox(cls, box: MailboxConfig) -> AuthSubject:
        """The subject for a ``[[mailbox]]``; its token cache is named after the mailbox."""
        return cls(name=f"mailbox '{box.name}'", kind=AuthKind(box.auth), username=box.username,
                   protocol=box.protocol, cache_stem=quote(box.name, safe=""),
                   login_command=LOGIN_COMMAND.format(name=box.name), oauth=box.oauth,
                   password=box.password)

    @classmethod
    def of_smtp(cls, smtp: SmtpConfig) -> AuthSubject:
        """The subject for ``[smtp]``; '@' cannot start a quoted mailbox name, so no clash."""
        if smtp.auth == "none":
            raise ConfigError("[smtp] auth = 'none' submits without logging in; there are no "
                              "credentials to get (set auth to use one)")
        return cls(name="[smtp]", kind=AuthKind(smtp.auth),
                   username=smtp.username or smtp.from_address, protocol="smtp",
                   cache_stem="@smtp", login_command=SMTP_LOGIN_COMMAND, oauth=smtp.oauth,
                   password=smtp.password)

    @property
    def account(self) -> str:
        """Who signs in: ``[oauth] account`` (a delegate of a shared mailbox), else the
        mailbox's own ``username``, which is always the mailbox opened (XOAUTH2 ``user=``)."""
        return (self.oauth.account if self.oauth else None) or self.username

    def require_oauth(self) -> OAuthConfig:
        """The OAuth settings, or a ConfigError for a subject that has none."""
        if self.oauth is None:
            raise ConfigError(f"{self.name}: auth = '{self.kind}' needs an [oauth] table with "
                              "tenant_id and client_id; add it to the configuration")
        return self.oauth

    def scopes(self) -> list[str]:
        """The scopes to ask MSAL for: configured or default, without MSAL's reserved ones."""
        oauth = self.require_oauth()
        wanted = oauth.scopes or tuple(default_scopes(self.protocol, self.kind is AuthKind.APP))
        return [scope for scope in wanted if scope not in RESERVED_SCOPES]


def subject_of(config: MailboxConfig | SmtpConfig | AuthSubject) -> AuthSubject:
    """Accept a mailbox, the SMTP settings, or a ready subject."""
    if isinstance(config, AuthSubject):
        return config
    if isinstance(config, SmtpConfig):
        return AuthSubject.of_smtp(config)
    return AuthSubject.of_mailbox(config)


@dataclass(frozen=True)
class AccessToken:
    """An access token with its expiry; ``secret`` never shows in repr."""

    secret: Secret
    expires_at: datetime
    from_cache: bool
    account: str | None = None

    def expires_within(self, margin: timedelta, now: datetime) -> bool:
        """True when the token is expired or expires within ``margin`` of ``now``."""
        return self.expires_at - margin <= now


@dataclass(frozen=True)
class LoginCredentials:
    """What a mail source needs to log in: a password or an XOAUTH2/OAUTHBEARER token."""

    kind: Literal["password", "xoauth2"]
    username: str
    secret: Secret


class TokenProvider(Protocol):
    """Hands out access tokens for one subject and keeps its grant alive."""

    subject: AuthSubject

    def token(self) -> AccessToken:
        """A valid access token: from the cache, refreshed silently when near expiry."""
        ...

    def invalidate(self, rejected: AccessToken | None = None) -> None:
        """Drop ``rejected`` (or every cached access token) after a server refused it."""
        ...

    def fresh_token(self) -> AccessToken:
        """A token just issued by the identity provider, whatever the cache holds: a test of
        the credentials as configured now (``ackmail check``)."""
        ...

    def refresh_if_idle(self, max_idle: timedelta) -> bool:
        """Refresh when the last refresh is older than ``max_idle``; True if it did."""
        ...
