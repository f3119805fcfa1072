"""Token providers (app-only, delegated), their registry, and ``credentials_for``.

A provider wraps one long-lived ``MsalSession``. Every token request runs inside
``session.transaction()``: lock, reload, acquire (cache or silent refresh), save
when changed. A token closer to expiry than ``refresh_margin_seconds`` is
refreshed before it is handed out, so a login never starts with a dying token.
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import msal

from ingest.auth.base import (
    AccessToken,
    AuthKind,
    AuthSubject,
    LoginCredentials,
    TokenProvider,
    subject_of,
)
from ingest.auth.cache import TokenCacheFile
from ingest.auth.diagnose import error_for
from ingest.auth.errors import ReauthRequired
from ingest.auth.msal_app import MsalSession
from ingest.config import MailboxConfig, SmtpConfig
from ingest.config.reader import Secret
from ingest.errors import ConfigError
from ingest.timeutil import utcnow

log = logging.getLogger(__name__)
TOKENS_DIR = "tokens"
MsalResult = dict[str, Any]


class _MsalTokenProvider(abc.ABC):
    """What app-only and delegated providers share: turning MSAL results into tokens."""

    def __init__(self, subject: AuthSubject, session: MsalSession) -> None:
        self.subject = subject
        self.session = session
        self.margin = timedelta(seconds=subject.require_oauth().refresh_margin_seconds)
        self.scopes = subject.scopes()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.subject.name})"

    def token(self) -> AccessToken:
        """A valid access token; refreshed first when it expires within the margin."""
        with self.session.transaction() as app:
            token = self._to_token(self._acquire(app, force=False))
            # A token just issued is as fresh as it gets, even if its lifetime is short.
            if token.from_cache and token.expires_within(self.margin, utcnow()):
                log.info("%s: access token expires at %s, refreshing early", self.subject.name,
                         token.expires_at)
                token = self._to_token(self._acquire(app, force=True))
        return token

    def invalidate(self, rejected: AccessToken | None = None) -> None:
        """Drop the rejected access token so the next ``token()`` fetches a new one."""
        with self.session.transaction():
            dropped = [entry for entry in self._cached_access_tokens()
                       if rejected is None or entry.get("secret") == rejected.secret.reveal()]
            for entry in dropped:
                self.session.cache.remove_at(entry)
        log.info("%s: dropped %d cached access token(s) after a refusal", self.subject.name,
                 len(dropped))

    @abc.abstractmethod
    def fresh_token(self) -> AccessToken:
        """A token just issued by the identity provider (see ``TokenProvider``)."""

    @abc.abstractmethod
    def _acquire(self, app: msal.ClientApplication, *, force: bool) -> MsalResult | None:
        """MSAL's result: from the cache, or new when ``force`` or the cache has none."""

    @abc.abstractmethod
    def _cached_access_tokens(self) -> list[dict[str, Any]]:
        """The access-token entries of this subject in MSAL's cache."""

    def _account_name(self) -> str | None:
        return None

    def _to_token(self, result: MsalResult | None) -> AccessToken:
        if result is None:
            raise ReauthRequired(self.subject.name, "no sign-in is stored for "
                                 f"{self.subject.account}", self.subject.login_command)
        if "access_token" not in result:
            raise error_for(result, self.subject)
        from_cache = result.get("token_source") == "cache"
        if not from_cache:
            self.session.note_token_issued()
        return AccessToken(Secret(result["access_token"], "identity provider"),
                           utcnow() + timedelta(seconds=int(result.get("expires_in", 0))),
                           from_cache=from_cache, account=self._account_name())


class AppTokenProvider(_MsalTokenProvider):
    """Client credentials (``oauth2-app``): the mailbox address is the XOAUTH2 user."""

    def refresh_if_idle(self, max_idle: timedelta) -> bool:
        """App-only access has no refresh token to keep alive; never refreshes."""
        return False

    def fresh_token(self) -> AccessToken:
        """Client credentials from an application with an empty cache: the poller's cached
        token stays, so a failing test of the credentials does not stop the poller."""
        app = self.session.uncached_application()
        result = self.session.guard(lambda: app.acquire_token_for_client(self.scopes))
        return self._to_token(result)

    def _acquire(self, app: msal.ClientApplication, *, force: bool) -> MsalResult:
        if force:
            app.remove_tokens_for_client()
        result: MsalResult = self.session.guard(lambda: app.acquire_token_for_client(self.scopes))
        return result

    def _cached_access_tokens(self) -> list[dict[str, Any]]:
        return list(self.session.cache.search(
            msal.TokenCache.CredentialType.ACCESS_TOKEN,
            query={"client_id": self.subject.require_oauth().client_id, "home_account_id": None}))


class DelegatedTokenProvider(_MsalTokenProvider):
    """A user's delegated grant (``oauth2-delegated``), kept alive by rotating refresh tokens."""

    def refresh_if_idle(self, max_idle: timedelta) -> bool:
        """Force a refresh when the last one is older than ``max_idle`` (e.g. 14 days)."""
        with self.session.transaction() as app:
            last = self.session.meta.last_refresh
            if last is not None and utcnow() - last < max_idle:
                return False
            self._to_token(self._acquire(app, force=True))
        log.info("%s: refreshed an idle grant (last refresh %s)", self.subject.name, last)
        return True

    def fresh_token(self) -> AccessToken:
        """Redeem the refresh token now; the rotated refresh token is saved."""
        with self.session.transaction() as app:
            return self._to_token(self._acquire(app, force=True))

    def account(self, app: msal.ClientApplication) -> dict[str, Any] | None:
        """MSAL's account for the subject's user name, if one is signed in."""
        accounts = app.get_accounts(username=self.subject.account)
        return accounts[0] if accounts else None

    def _acquire(self, app: msal.ClientApplication, *, force: bool) -> MsalResult | None:
        account = self.account(app)
        if account is None:
            return None
        result: MsalResult | None = self.session.guard(lambda: app.acquire_token_silent_with_error(
            self.scopes, account, force_refresh=force))
        return result

    def _account_name(self) -> str | None:
        return self.subject.account

    def _cached_access_tokens(self) -> list[dict[str, Any]]:
        account = self.account(self.session.application())
        if account is None:
            return []
        return list(self.session.cache.search(
            msal.TokenCache.CredentialType.ACCESS_TOKEN,
            query={"home_account_id": account["home_account_id"]}))


ProviderFactory = Callable[[AuthSubject, MsalSession], TokenProvider]
# The one registry of token providers, keyed by the ``auth`` setting.
PROVIDERS: Mapping[AuthKind, ProviderFactory] = {
    AuthKind.APP: AppTokenProvider,
    AuthKind.DELEGATED: DelegatedTokenProvider,
}


def cache_path(state_dir: Path, config: MailboxConfig | SmtpConfig | AuthSubject) -> Path:
    """Where the subject's encrypted token cache lives: ``<state_dir>/tokens/<name>.cache``."""
    return state_dir / TOKENS_DIR / f"{subject_of(config).cache_stem}.cache"


class TokenProviders:
    """One long-lived provider (and MSAL application) per subject, created on first use."""

    def __init__(self, state_dir: Path, cache_key: Secret | None, *, timeout: float = 30.0,
                 lock_timeout: float = 30.0) -> None:
        self.state_dir = state_dir
        self._cache_key = cache_key
        self._timeout = timeout
        self._lock_timeout = lock_timeout
        self._providers: dict[str, TokenProvider] = {}
        self._lock = threading.Lock()  # pollers of several mailboxes share one pool

    def __repr__(self) -> str:
        return f"TokenProviders({str(self.state_dir)!r}, {len(self._providers)} open)"

    def for_subject(self, config: MailboxConfig | SmtpConfig | AuthSubject) -> TokenProvider:
        """The provider for a mailbox or ``[smtp]``; the same object on every call."""
        subject = subject_of(config)
        with self._lock:
            if subject.cache_stem not in self._providers:
                self._providers[subject.cache_stem] = self._create(subject)
            return self._providers[subject.cache_stem]

    def _create(self, subject: AuthSubject) -> TokenProvider:
        factory = PROVIDERS.get(subject.kind)
        if factory is None:
            raise ConfigError(f"{subject.name}: auth = '{subject.kind}' uses no tokens; "
                              f"choose one of {', '.join(PROVIDERS)}")
        if self._cache_key is None:
            raise ConfigError("[security] cache_key is not set but OAuth token caches are "
                              "encrypted with it; add cache_key = { env = \"ACKMAIL_CACHE_KEY\" } "
                              "and export a long random value")
        cache_file = TokenCacheFile(cache_path(self.state_dir, subject), self._cache_key,
                                    subject=subject.name, fix=f"run {subject.login_command}",
                                    lock_timeout=self._lock_timeout)
        return factory(subject, MsalSession(subject, cache_file, timeout=self._timeout))


def credentials_for(config: MailboxConfig | SmtpConfig | AuthSubject,
                    providers: TokenProviders) -> LoginCredentials:
    """The login a source uses: the password, or a fresh token for XOAUTH2/OAUTHBEARER."""
    subject = subject_of(config)
    if subject.kind is AuthKind.BASIC:
        if subject.password is None:
            raise ConfigError(f"{subject.name}: auth = 'basic' needs a password; add "
                              "password = { env = \"NAME\" } to its table")
        return LoginCredentials("password", subject.username, subject.password)
    token = providers.for_subject(subject).token()
    return LoginCredentials("xoauth2", subject.username, token.secret)
