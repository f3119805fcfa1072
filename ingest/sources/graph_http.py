"""HTTP to Microsoft Graph for one mailbox: bearer tokens, throttling, errors translated here.

``requests`` rather than the official ``msgraph-sdk``: the SDK is asynchronous (the
poller is threaded), pulls in azure-core, kiota and their dependencies for the six
calls a mail source makes, and hides the status codes and ``Retry-After`` this module
has to act on. ``requests`` is a dependency already (MSAL uses it).

What Graph answers becomes ackmail's errors at this boundary:
- 429/503 (and 502/504): a ``Retry-After`` of up to a minute is waited out here, with
  tenacity, a few times; a longer one (or a fourth) is ``ServerThrottled``, which the
  poller waits out with its own cap before it reconnects;
- 401: the token is dropped from the cache and the request made once more with a
  fresh one; a second 401 is an ``AuthError``;
- 403: an ``AuthError`` naming the permission and the PowerShell step (graph_access.py);
- 404: ``ItemGone``; 410 on a delta link: ``DeltaGone``; anything else: ``ServerRefused``;
- a broken connection: ``ConnectionLost``; an untrusted certificate: ``CertificateRejected``.

Exchange serves at most four concurrent requests per mailbox (MailboxConcurrency);
every request takes one of four slots shared by the process's sources of that mailbox.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from ingest.auth import AccessToken, TokenProviders
from ingest.auth.graph_access import graph_denied, graph_token_refused
from ingest.config import MailboxConfig
from ingest.net.tls import explain_certificate
from ingest.sources.base import SourceOptions
from ingest.sources.connect import (
    CertificateRejected,
    ConnectionLost,
    ServerRefused,
    ServerThrottled,
)
from ingest.timeutil import utcnow

log = logging.getLogger(__name__)

CONCURRENCY = 4  # Exchange Online's MailboxConcurrency limit for Graph
THROTTLE_ATTEMPTS = 4
LONGEST_PAUSE_HERE = 60.0  # seconds; a longer Retry-After goes to the poller's backoff
_BUSY = frozenset({429, 502, 503, 504})
_TOKEN_MARGIN = timedelta(minutes=2)
# Ask for ids that survive a move, so a message's source key stays the same.
IMMUTABLE_IDS = 'IdType="ImmutableId"'

_slots_lock = threading.Lock()
_slots: dict[tuple[str, str], threading.BoundedSemaphore] = {}


class ItemGone(ServerRefused):
    """The message or folder is not there (moved or deleted meanwhile)."""


class DeltaGone(ServerRefused):
    """Graph no longer holds the state behind a delta link (410): read the folder afresh."""


class _Busy(ServerThrottled):
    """A 429/503 answer, waited out here a few times before it goes up."""


def mailbox_slots(box: MailboxConfig) -> threading.BoundedSemaphore:
    """The four request slots of one mailbox, shared by every source in the process."""
    key = (box.graph_endpoint, box.username.lower())
    with _slots_lock:
        return _slots.setdefault(key, threading.BoundedSemaphore(CONCURRENCY))


class GraphClient:
    """Requests to ``/v1.0/users/{mailbox}`` with the mailbox's token; thread-safe."""

    def __init__(self, box: MailboxConfig, providers: TokenProviders,
                 options: SourceOptions) -> None:
        self.box = box
        self.base = f"{box.graph_endpoint}/v1.0/users/{quote(box.username, safe='@')}"
        self.timeout = options.timeout_seconds
        self._provider = providers.for_subject(box)
        self._slots = mailbox_slots(box)
        self._token_lock = threading.Lock()
        self._token: AccessToken | None = None
        self.session = requests.Session()
        self.session.mount("https://", HTTPAdapter(pool_maxsize=CONCURRENCY))
        if box.ca_file is not None:
            # requests lets REQUESTS_CA_BUNDLE override Session.verify: with a ca_file the
            # environment is off, so exactly that CA is trusted.
            self.session.trust_env = False
            self.session.verify = str(box.ca_file)

    def token(self) -> AccessToken:
        """The access token requests carry: kept until refused or about to expire (a
        session lasts as long as the poller runs; MSAL renews it from its cache)."""
        with self._token_lock:
            if self._token is None or self._token.expires_within(_TOKEN_MARGIN, utcnow()):
                self._token = self._provider.token()
            return self._token

    def json(self, method: str, url: str, body: Mapping[str, Any] | None = None, *,
             prefer: str | None = None, action: str) -> dict[str, Any]:
        """A JSON answer; ``url`` is a path under the mailbox, or a link Graph gave."""
        answer = self.request(method, url, body, prefer=prefer, action=action).json()
        if not isinstance(answer, dict):
            raise ServerRefused(f"mailbox '{self.box.name}': Microsoft Graph answered "
                                f"{action} with something other than a JSON object")
        return answer

    def request(self, method: str, url: str, body: Mapping[str, Any] | None = None, *,
                prefer: str | None = None, action: str) -> requests.Response:
        """One call, with throttling waited out and a refused token renewed once."""
        retrying = Retrying(retry=retry_if_exception_type(_Busy), wait=_pause,
                            stop=stop_after_attempt(THROTTLE_ATTEMPTS), reraise=True,
                            before_sleep=self._before_sleep)
        answer: requests.Response = retrying(self._authorized, method, url, body, prefer, action)
        return answer

    def _authorized(self, method: str, url: str, body: Mapping[str, Any] | None,
                    prefer: str | None, action: str) -> requests.Response:
        token = self.token()
        answer = self._send(method, url, body, prefer, token, action)
        if answer.status_code == 401:
            self._drop(token)
            token = self.token()
            answer = self._send(method, url, body, prefer, token, action)
        self._check(answer, token, action)
        return answer

    def _drop(self, token: AccessToken) -> None:
        with self._token_lock:
            if self._token is token:
                self._provider.invalidate(token)
                self._token = None

    def _send(self, method: str, url: str, body: Mapping[str, Any] | None, prefer: str | None,
              token: AccessToken, action: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token.secret.reveal()}", "Prefer": IMMUTABLE_IDS}
        if prefer:
            headers["Prefer"] = f"{IMMUTABLE_IDS}, {prefer}"
        target = url if url.startswith("https://") else self.base + url
        try:
            with self._slots:
                return self.session.request(method, target, json=body, headers=headers,
                                            timeout=self.timeout)
        except requests.exceptions.SSLError as exc:
            raise self._tls_error(exc) from None
        except requests.exceptions.RequestException as exc:
            raise ConnectionLost(
                f"mailbox '{self.box.name}': the connection to {self.box.graph_endpoint} "
                f"failed while {action} ({type(exc).__name__}); check that it is reachable"
            ) from None

    def _check(self, answer: requests.Response, token: AccessToken, action: str) -> None:
        status = answer.status_code
        if status < 400:
            return
        code, message = _graph_error(answer)
        box = self.box
        if status == 401:
            raise graph_token_refused(box, token.secret, code, message)
        if status == 403:
            raise graph_denied(box, token.secret, code, message)
        said = f"{status} {code}: {message}"[:300]
        if status in _BUSY:
            wait = _retry_after(answer)
            error = _Busy if wait <= LONGEST_PAUSE_HERE else ServerThrottled
            raise error(f"mailbox '{box.name}': Microsoft Graph throttles this mailbox ({said})"
                        f" and asks for a pause of {wait:g} s before {action}", wait)
        if status == 404:
            raise ItemGone(f"mailbox '{box.name}': {action}: not found ({said})")
        if status == 410:
            raise DeltaGone(f"mailbox '{box.name}': the delta link of folder '{box.folder}' "
                            f"has expired ({said}); reading the folder afresh")
        raise ServerRefused(f"mailbox '{box.name}': Microsoft Graph refused {action} ({said}); "
                            "see the error code in Graph's documentation if it persists")

    def _tls_error(self, exc: requests.exceptions.SSLError) -> ConnectionLost | CertificateRejected:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
            cause = cause.__context__ or getattr(cause, "reason", None) or \
                next((a for a in getattr(cause, "args", ()) if isinstance(a, BaseException)),
                     None)
        if cause is None:
            return ConnectionLost(f"mailbox '{self.box.name}': the TLS connection to "
                                  f"{self.box.graph_endpoint} failed; retrying")
        explained = explain_certificate(cause)
        return CertificateRejected(f"mailbox '{self.box.name}': the TLS connection to "
                                   f"{self.box.graph_endpoint} failed: {explained}")

    def _before_sleep(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("%s (waiting, attempt %d)", error, state.attempt_number)

    def close(self) -> None:
        self.session.close()


def _pause(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    return error.wait_seconds if isinstance(error, ServerThrottled) else 1.0


def _retry_after(answer: requests.Response) -> float:
    """Graph's Retry-After in seconds; without one, a short pause (Graph's advice: back off)."""
    try:
        return max(0.0, float(answer.headers.get("Retry-After", "2")))
    except ValueError:
        return 2.0


def _graph_error(answer: requests.Response) -> tuple[str, str]:
    """The ``error.code`` and ``error.message`` of a Graph error body (or what there is)."""
    try:
        error = answer.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    return str(error.get("code") or answer.reason), str(error.get("message") or "")[:300]

