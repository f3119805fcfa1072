"""The long-lived MSAL application of one subject, bound to its encrypted cache file.

``MsalSession.transaction()`` is the only way tokens are read or changed: it holds
a thread lock and the cache file's lock, reloads the cache when another process
wrote it, and saves only when MSAL's cache (or our metadata) changed. Refresh
tokens rotate on every use, so losing a save would lose the grant.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msal
import requests

from ingest.auth.base import AuthKind, AuthSubject
from ingest.auth.cache import CacheContents, CacheMetadata, FileStamp, TokenCacheFile
from ingest.auth.certificate import msal_credential
from ingest.auth.diagnose import authority_error, server_fault, transport_error
from ingest.auth.errors import ReauthRequired, TokenCacheError
from ingest.config import LOOPBACK_HOSTS, OAuthConfig
from ingest.config.reader import Secret
from ingest.errors import ConfigError
from ingest.timeutil import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
Credential = str | dict[str, str | bool] | None


class _DropTokenEvents(logging.Filter):
    """MSAL logs every token event at DEBUG; it masks tokens but not the one-time
    device/authorization code or the PKCE verifier, so those records never pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("event=")


logging.getLogger("msal.token_cache").addFilter(_DropTokenEvents())


def authority_url(oauth: OAuthConfig) -> str:
    """``<authority>/<tenant_id>``, the form MSAL expects."""
    return f"{oauth.authority.rstrip('/')}/{oauth.tenant_id}"


def is_microsoft_authority(url: str) -> bool:
    """True for Entra ID's own hosts, where MSAL's instance discovery applies."""
    return (urlsplit(url).hostname or "") in msal.authority.WELL_KNOWN_AUTHORITY_HOSTS


class TimeoutSession(requests.Session):
    """A requests session with a default timeout, which requests itself lacks."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        """``requests.Session.request`` with ``timeout`` filled in when not given."""
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def build_http_client(oauth: OAuthConfig, timeout: float) -> requests.Session:
    """The HTTP client MSAL uses; with ``ca_file`` it trusts exactly that CA.

    requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override ``Session.verify``,
    so with a ca_file the environment is switched off and only the proxy
    settings are taken from it explicitly (loopback never goes through a proxy).
    """
    session = TimeoutSession(timeout)
    if oauth.ca_file is not None:
        session.trust_env = False
        session.verify = str(oauth.ca_file)
        url = authority_url(oauth)
        if urlsplit(url).hostname not in LOOPBACK_HOSTS:
            session.proxies = requests.utils.get_environ_proxies(url)
    return session


def client_credential(subject: AuthSubject) -> Credential:
    """A certificate (as MSAL takes it), a client secret, or None for public clients."""
    oauth = subject.require_oauth()
    if oauth.certificate is not None:
        return msal_credential(subject.name, oauth.certificate)
    if oauth.client_secret is not None:
        return oauth.client_secret.reveal()
    if subject.kind is AuthKind.APP:
        raise ConfigError(f"{subject.name}: auth = 'oauth2-app' needs client_secret or "
                          "certificate in its [oauth] table")
    return None


def build_application(subject: AuthSubject, cache: msal.TokenCache,
                      http_client: requests.Session) -> msal.ClientApplication:
    """A confidential client when a credential is configured, else a public client."""
    oauth = subject.require_oauth()
    authority = authority_url(oauth)
    common: dict[str, Any] = {
        "client_id": oauth.client_id, "authority": authority, "token_cache": cache,
        "http_client": http_client,
        # Discovery asks login.microsoftonline.com about the host: only for Entra's own hosts.
        "instance_discovery": None if is_microsoft_authority(authority) else False,
    }
    credential = client_credential(subject)
    if credential is None:
        return msal.PublicClientApplication(**common)
    return msal.ConfidentialClientApplication(client_credential=credential, **common)


class MsalSession:
    """One MSAL application and token cache per subject, created once and reused."""

    def __init__(self, subject: AuthSubject, cache_file: TokenCacheFile, *,
                 timeout: float = 30.0) -> None:
        self.subject = subject
        self.cache = msal.SerializableTokenCache()
        self.meta = CacheMetadata()
        self._file = cache_file
        self._http = build_http_client(subject.require_oauth(), timeout)
        self._app: msal.ClientApplication | None = None
        self._thread_lock = threading.RLock()
        self._stamp: FileStamp | None = None
        self._saved_meta = self.meta

    def __repr__(self) -> str:
        return f"MsalSession({self.subject.name}, {self._file!r})"

    @property
    def authority(self) -> str:
        """The authority URL this session talks to."""
        return authority_url(self.subject.require_oauth())

    def application(self) -> msal.ClientApplication:
        """The MSAL application, built on first use (MSAL fetches the discovery document)."""
        with self._thread_lock:
            if self._app is None:
                try:
                    self._app = self.guard(
                        lambda: build_application(self.subject, self.cache, self._http))
                except ValueError as exc:
                    raise authority_error(self.subject, self.authority, exc) from exc
            return self._app

    def uncached_application(self) -> msal.ClientApplication:
        """An MSAL application like ``application()`` but with an empty, unsaved cache."""
        try:
            return self.guard(lambda: build_application(self.subject, msal.TokenCache(),
                                                        self._http))
        except ValueError as exc:
            raise authority_error(self.subject, self.authority, exc) from exc

    def guard(self, call: Callable[[], T]) -> T:
        """Run an MSAL call, translating transport failures into ackmail errors."""
        try:
            return call()
        except requests.exceptions.RequestException as exc:
            raise transport_error(self.subject, self.authority, exc) from exc
        except msal.exceptions.MsalServiceError as exc:
            raise server_fault(self.subject, self.authority, exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[msal.ClientApplication]:
        """Lock, load the newest cache, run the body, save if anything changed."""
        with self._thread_lock, self._file.locked():
            self._reload_if_changed()
            try:
                yield self.application()
            finally:
                # A refresh that succeeded before a later step failed rotated the
                # refresh token: it must be saved either way.
                self._save_if_changed()

    @contextmanager
    def replacing(self) -> Iterator[msal.ClientApplication]:
        """Start from an empty cache (a new sign-in replaces the old grant) and save it.

        The interactive part runs without the file lock, so a poller in another
        process is not blocked for minutes; the new grant is written at the end.
        On failure nothing is written and the next transaction reloads the file.
        """
        with self._thread_lock:
            self.cache.deserialize("")
            self.meta = CacheMetadata()
            self._stamp = None
            app = self.application()
            yield app
            with self._file.locked():
                self._write()

    def note_token_issued(self) -> None:
        """Record that the identity provider (not the cache) just issued tokens."""
        self.meta = dataclasses.replace(self.meta, last_refresh=utcnow())

    def note_sign_in(self) -> None:
        """Record an interactive sign-in (it also issued a new refresh token)."""
        now = utcnow()
        self.meta = dataclasses.replace(self.meta, last_refresh=now, signed_in_at=now)

    def _reload_if_changed(self) -> None:
        stamp = self._file.stamp()
        if stamp is not None and stamp == self._stamp:
            return
        try:
            contents = self._file.read()
        except TokenCacheError as exc:
            self._discard_unreadable(exc)
            contents = None
        self.cache.deserialize(contents.msal_state.reveal() if contents else None)
        self.meta = self._saved_meta = contents.meta if contents else CacheMetadata()
        self._stamp = stamp

    def _discard_unreadable(self, exc: TokenCacheError) -> None:
        if self.subject.kind is AuthKind.DELEGATED:
            raise ReauthRequired(self.subject.name, exc.cause, self.subject.login_command,
                                 fix=exc.fix) from None
        # App-only caches hold nothing a new client-credentials call cannot replace.
        log.warning("%s: discarding an unreadable token cache: %s", self.subject.name, exc.cause)

    def _save_if_changed(self) -> None:
        if self.cache.has_state_changed or self.meta != self._saved_meta:
            self._write()

    def _write(self) -> None:
        state = Secret(self.cache.serialize(), "token cache")
        self._stamp = self._file.write(CacheContents(state, self.meta))
        self._saved_meta = self.meta
