"""What every mail source shares: its TLS context, the error boundary, the login.

This is the boundary where socket, ssl, imaplib/imapclient and poplib errors become
ackmail errors: a lost connection is ``ConnectionLost`` (retry), a certificate the
host does not trust is ``CertificateRejected`` (settings), a refused login is an
``AuthError`` with the cause and the fix. The login and its retry with a fresh token
are ``ingest.auth.login``'s, shared with SMTP. The protocol sessions themselves are in
``imap_session.py`` and ``pop3_session.py``.
"""

from __future__ import annotations

import imaplib
import poplib
import re
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ingest.auth import (
    AuthError,
    LoginCredentials,
    LoginRefused,
    TokenProviders,
    log_in_with_retry,
)
from ingest.auth.login_failures import diagnose_login_failure
from ingest.auth.sasl import Mechanism
from ingest.config import MailboxConfig
from ingest.config.reader import Secret
from ingest.errors import PermanentError, TransientError
from ingest.net.tls import client_context, explain_certificate


class ConnectionLost(TransientError):
    """The server could not be reached, or the connection broke; reconnecting may work."""


class ServerRefused(TransientError):
    """The server answered a command with NO/BAD/-ERR; it may accept it later."""


class ServerThrottled(ServerRefused):
    """The server asked for a pause before the next command (Exchange Online's throttling)."""

    def __init__(self, message: str, wait_seconds: float) -> None:
        super().__init__(message)
        self.wait_seconds = wait_seconds


class SessionEnded(ConnectionLost):
    """The server ended the session itself (BYE: its idle limit, say); reconnecting is the
    normal answer, not a fault to report."""


class SessionTokenExpired(SessionEnded):
    """The server ended the session because its access token expired: reconnect with a
    new token, not the cached one."""


class CertificateRejected(PermanentError):
    """The server's TLS certificate is not trusted by this host."""


def tls_context(box: MailboxConfig) -> ssl.SSLContext:
    """The mailbox's TLS context (``ingest.net.tls``: full checks, ``ca_file`` adds trust)."""
    return client_context(box.ca_file, f"mailbox '{box.name}'")


def certificate_error(box: MailboxConfig,
                      exc: ssl.SSLCertVerificationError) -> CertificateRejected:
    """The error for a server whose certificate this host does not accept."""
    return CertificateRejected(f"mailbox '{box.name}': the TLS connection to {box.host}:"
                               f"{box.port} failed: {explain_certificate(exc)}")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# Exchange Online's words (sources in README's "Mail servers" section).
_THROTTLED = re.compile(r"Request is throttled\. Suggested Backoff Time: (\d+) milliseconds",
                        re.I)
_TOKEN_EXPIRED = re.compile(r"AccessTokenExpired", re.I)
_NOT_CONNECTED = re.compile(r"authenticated but not connected", re.I)


@contextmanager
def boundary(box: MailboxConfig, action: str, *,
             token: Secret | None = None) -> Iterator[None]:
    """Translate library errors raised while ``action`` into ackmail errors; ``token`` is
    the session's access token, read (claims only) when the server refuses the session."""
    try:
        yield
    except ssl.SSLCertVerificationError as exc:
        raise certificate_error(box, exc) from None
    except (imaplib.IMAP4.abort, OSError, EOFError) as exc:
        if _TOKEN_EXPIRED.search(str(exc)):
            raise session_ended(box, str(exc)) from None
        raise ConnectionLost(
            f"mailbox '{box.name}': the connection to {box.host}:{box.port} failed while "
            f"{action} ({_describe(exc)}); check that the server is up and reachable"
        ) from None
    except (imaplib.IMAP4.error, poplib.error_proto) as exc:
        raise _refusal(box, action, exc, token) from None


def _refusal(box: MailboxConfig, action: str, exc: Exception,
             token: Secret | None) -> ServerRefused | AuthError:
    text = str(exc)
    if _NOT_CONNECTED.search(text):
        return diagnose_login_failure(text, box, token=token)
    throttled = _THROTTLED.search(text)
    if throttled:
        wait = int(throttled.group(1)) / 1000
        return ServerThrottled(f"mailbox '{box.name}': the server throttles this mailbox and "
                               f"asks for a pause of {wait:.0f} s before {action}", wait)
    return ServerRefused(f"mailbox '{box.name}': the server refused {action} "
                         f"({_describe(exc)}); see the server's log if it persists")


def session_ended(box: MailboxConfig, text: str) -> SessionEnded:
    """The error for a BYE the server sent on its own (``text`` is the BYE's text)."""
    said = " ".join(text.split())[:200]
    if _TOKEN_EXPIRED.search(text):
        return SessionTokenExpired(f"mailbox '{box.name}': the server ended the session "
                                   f"because its access token expired ({said}); "
                                   "reconnecting with a new token")
    return SessionEnded(f"mailbox '{box.name}': the server ended the session ({said}); "
                        "reconnecting")


def bearer_mechanism(advertised: set[str]) -> Mechanism:
    """XOAUTH2 where offered (Exchange), else OAUTHBEARER where offered, else XOAUTH2."""
    if Mechanism.XOAUTH2.value not in advertised and Mechanism.OAUTHBEARER.value in advertised:
        return Mechanism.OAUTHBEARER
    return Mechanism.XOAUTH2


def log_in(box: MailboxConfig, providers: TokenProviders,
           authenticate: Callable[[LoginCredentials], str]) -> str:
    """Log in (``ingest.auth.log_in_with_retry``: a refused token is retried once, fresh).

    Returns the mechanism used; raises AuthError (with the cause and the fix) when the
    server refuses, and whatever ``credentials_for`` raises (ReauthRequired...).
    """
    try:
        return log_in_with_retry(box, providers, authenticate)
    except LoginRefused as refused:
        raise diagnose_login_failure(str(refused), box, token=refused.token) from None
