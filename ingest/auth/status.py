"""``auth status``: what is stored for a mailbox, read from its cache file, no network call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msal

from ingest.auth.base import AuthKind, AuthSubject, subject_of
from ingest.auth.cache import CacheContents, CacheMetadata, TokenCacheFile
from ingest.auth.certificate import load_certificate
from ingest.auth.errors import TokenCacheError
from ingest.auth.tokens import cache_path
from ingest.config import MailboxConfig, SmtpConfig
from ingest.config.reader import Secret
from ingest.errors import ConfigError
from ingest.timeutil import utcnow

SECRET_WARNING_DAYS = 30
SECRET_FIX = "create a new secret in Entra ID and update client_secret and client_secret_expires"
CERTIFICATE_FIX = ("create a new certificate, upload its public part to the app in Entra ID "
                   "and point certificate.file at it")
# Entra ends a refresh token after 90 days unused; warn while there is time to act.
REFRESH_TOKEN_LIFETIME_DAYS = 90
IDLE_WARNING_DAYS = 76


@dataclass(frozen=True)
class AuthStatus:
    """One subject's auth state, as ``ackmail auth status`` shows it. No secrets."""

    subject: str
    kind: AuthKind
    account: str | None
    signed_in: bool
    access_token_expires: datetime | None
    last_refresh: datetime | None
    refresh_token_idle_days: float | None
    client_secret_expires: date | None
    warnings: tuple[str, ...]
    mailbox: str = ""  # the mailbox opened, when the account is a delegate of it
    certificate_expires: datetime | None = None


@dataclass(frozen=True)
class _Stored:
    """What the cache file says about the subject."""

    account: str | None = None
    has_refresh_token: bool = False
    access_token_expires: datetime | None = None
    meta: CacheMetadata = field(default_factory=CacheMetadata)
    problem: str | None = None


def auth_status(config: MailboxConfig | SmtpConfig | AuthSubject, *, state_dir: Path,
                cache_key: Secret | None, now: datetime | None = None) -> AuthStatus:
    """Kind, account, token expiry, last refresh, idle days and warnings for one subject."""
    subject = subject_of(config)
    moment = now or utcnow()
    if subject.kind is AuthKind.BASIC:
        return AuthStatus(subject.name, subject.kind, subject.username,
                          subject.password is not None, None, None, None, None, ())
    stored = _read_stored(subject, state_dir, cache_key)
    last = stored.meta.last_refresh
    idle = round((moment - last).total_seconds() / 86400, 1) if last else None
    delegated = subject.kind is AuthKind.DELEGATED
    signed_in = stored.has_refresh_token if delegated else stored.access_token_expires is not None
    expires = subject.oauth.client_secret_expires if subject.oauth else None
    certificate, certificate_problem = _certificate_expiry(subject)
    warnings = [text for text in (
        stored.problem,
        certificate_problem,
        _expiry_warning("client secret", expires, moment.date(), SECRET_FIX),
        _expiry_warning("client certificate", certificate.date() if certificate else None,
                        moment.date(), CERTIFICATE_FIX),
        _sign_in_warning(subject, stored) if delegated else None,
        _idle_warning(subject, idle) if delegated and stored.has_refresh_token else None,
    ) if text]
    account = stored.account or (subject.username if not delegated else None)
    return AuthStatus(subject.name, subject.kind, account, signed_in,
                      stored.access_token_expires, last, idle if delegated else None, expires,
                      tuple(warnings), mailbox=subject.username, certificate_expires=certificate)


def _certificate_expiry(subject: AuthSubject) -> tuple[datetime | None, str | None]:
    """The certificate's notAfter, or why the certificate cannot be read."""
    config = subject.oauth.certificate if subject.oauth else None
    if config is None:
        return None, None
    try:
        return load_certificate(subject.name, config).not_after, None
    except ConfigError as exc:
        return None, str(exc)


def _read_stored(subject: AuthSubject, state_dir: Path, cache_key: Secret | None) -> _Stored:
    if cache_key is None:
        return _Stored(problem="[security] cache_key is not set, so the token cache cannot be "
                               "read; set it as for 'ackmail poll'")
    file = TokenCacheFile(cache_path(state_dir, subject), cache_key, subject=subject.name,
                          fix=f"run {subject.login_command}")
    try:
        contents = file.read()
    except TokenCacheError as exc:
        return _Stored(problem=f"{exc.cause}; {exc.fix}")
    return _from_contents(contents, subject) if contents else _Stored()


def _from_contents(contents: CacheContents, subject: AuthSubject) -> _Stored:
    cache = msal.SerializableTokenCache()
    cache.deserialize(contents.msal_state.reveal())
    kinds = msal.TokenCache.CredentialType
    home: str | None = None
    account = None
    if subject.kind is AuthKind.DELEGATED:
        found = [entry for entry in cache.search(kinds.ACCOUNT)
                 if str(entry.get("username", "")).lower() == subject.account.lower()]
        if found:
            home, account = found[0]["home_account_id"], found[0]["username"]
    has_rt = home is not None and bool(list(cache.search(
        kinds.REFRESH_TOKEN, query={"home_account_id": home})))
    tokens = cache.search(kinds.ACCESS_TOKEN, query={"home_account_id": home})
    return _Stored(account, has_rt, _latest_expiry(tokens), contents.meta)


def _latest_expiry(entries: Any) -> datetime | None:
    stamps = [int(entry["expires_on"]) for entry in entries if "expires_on" in entry]
    return datetime.fromtimestamp(max(stamps), UTC) if stamps else None


def _expiry_warning(what: str, expires: date | None, today: date, fix: str) -> str | None:
    if expires is None:
        return None
    days = (expires - today).days
    if days < 0:
        return f"the {what} expired on {expires} ({-days} days ago): {fix}"
    if days <= SECRET_WARNING_DAYS:
        return f"the {what} expires on {expires}, in {days} days: {fix}"
    return None


def _sign_in_warning(subject: AuthSubject, stored: _Stored) -> str | None:
    if stored.has_refresh_token or stored.problem:
        return None
    return f"no sign-in is stored for {subject.account}: run {subject.login_command}"


def _idle_warning(subject: AuthSubject, idle: float | None) -> str | None:
    if idle is None or idle < IDLE_WARNING_DAYS:
        return None
    return (f"the refresh token has been idle {idle:.0f} days and lapses after "
            f"{REFRESH_TOKEN_LIFETIME_DAYS}: let 'ackmail poll' refresh it, or run "
            f"{subject.login_command}")
