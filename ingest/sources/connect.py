"""What every network source shares: TLS contexts, the error boundary, the login retry.

This is the boundary where socket, ssl, imaplib/imapclient and poplib errors become
ackmail errors: a lost connection is ``ConnectionLost`` (retry), a certificate the
host does not trust is ``CertificateRejected`` (settings), a refused login is an
``AuthError`` with the cause and the fix. A refused token is dropped from the cache
and the login tried once more with a fresh one, since Exchange may reject a token
the cache still considers valid (revoked session, policy change). The protocol
sessions themselves are in ``imap_session.py`` and ``pop3_session.py``.
"""

from __future__ import annotations

import imaplib
import poplib
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ingest.auth import AccessToken, LoginCredentials, TokenProviders, credentials_for
from ingest.auth.login_failures import diagnose_login_failure
from ingest.auth.sasl import Mechanism
from ingest.config import MailboxConfig
from ingest.errors import ConfigError, PermanentError, TransientError
from ingest.timeutil import utcnow


class ConnectionLost(TransientError):
    """The server could not be reached, or the connection broke; reconnecting may work."""


class ServerRefused(TransientError):
    """The server answered a command with NO/BAD/-ERR; it may accept it later."""


class CertificateRejected(PermanentError):
    """The server's TLS certificate is not trusted by this host."""


class LoginRefused(Exception):
    """The server refused the credentials; carries the server's text (never a secret)."""


@dataclass(frozen=True)
class CertificateProblem:
    """An OpenSSL verification message, what it means, and what to do."""

    marker: str
    cause: str
    fix: str


CERTIFICATE_PROBLEMS: tuple[CertificateProblem, ...] = (
    CertificateProblem("unable to get local issuer certificate",
                       "its certificate is signed by a CA this host does not trust",
                       "set ca_file to the PEM file of the CA that signed it"),
    CertificateProblem("self-signed certificate",
                       "its certificate is self-signed or signed by an untrusted private CA",
                       "set ca_file to the PEM file of that CA (or of the certificate)"),
    CertificateProblem("certificate has expired", "its certificate has expired",
                       "ask the server's administrator to renew it; check this host's clock"),
    CertificateProblem("not yet valid", "its certificate is not valid yet",
                       "check this host's clock (NTP)"),
    CertificateProblem("Hostname mismatch", "its certificate was issued for another name",
                       "set host to a name the certificate lists (see the server's certificate)"),
)


def tls_context(box: MailboxConfig) -> ssl.SSLContext:
    """Certificate and host name checking on; ``ca_file`` adds trust to the system store."""
    context = ssl.create_default_context()
    if box.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(box.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"mailbox '{box.name}': ca_file {box.ca_file} cannot be loaded ({exc}); "
                "point it at a PEM file of CA certificates"
            ) from None
    return context


def explain_certificate(exc: ssl.SSLCertVerificationError) -> str:
    """What a failed certificate check means, and the fix, in one phrase."""
    text = str(exc.verify_message or exc.reason or exc)
    found = next((p for p in CERTIFICATE_PROBLEMS if p.marker.lower() in text.lower()), None)
    if found is None:
        return f"its certificate was rejected ({text}); check the server's certificate and ca_file"
    return f"{found.cause} ({text}); {found.fix}"


def certificate_error(box: MailboxConfig,
                      exc: ssl.SSLCertVerificationError) -> CertificateRejected:
    """The error for a server whose certificate this host does not accept."""
    return CertificateRejected(f"mailbox '{box.name}': the TLS connection to {box.host}:"
                               f"{box.port} failed: {explain_certificate(exc)}")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def boundary(box: MailboxConfig, action: str) -> Iterator[None]:
    """Translate library errors raised while ``action`` into ackmail errors."""
    try:
        yield
    except ssl.SSLCertVerificationError as exc:
        raise certificate_error(box, exc) from None
    except (imaplib.IMAP4.abort, OSError, EOFError) as exc:
        raise ConnectionLost(
            f"mailbox '{box.name}': the connection to {box.host}:{box.port} failed while "
            f"{action} ({_describe(exc)}); check that the server is up and reachable"
        ) from None
    except (imaplib.IMAP4.error, poplib.error_proto) as exc:
        raise ServerRefused(
            f"mailbox '{box.name}': the server refused {action} ({_describe(exc)}); "
            "see the server's log if it persists"
        ) from None


def bearer_mechanism(advertised: set[str]) -> Mechanism:
    """XOAUTH2 where offered (Exchange), else OAUTHBEARER where offered, else XOAUTH2."""
    if Mechanism.XOAUTH2.value not in advertised and Mechanism.OAUTHBEARER.value in advertised:
        return Mechanism.OAUTHBEARER
    return Mechanism.XOAUTH2


# --- login with one retry on a refused token


Authenticate = Callable[[LoginCredentials], str]


def log_in(box: MailboxConfig, providers: TokenProviders, authenticate: Authenticate) -> str:
    """Get credentials and log in; a refused token is dropped and retried once, fresh.

    Returns the mechanism used; raises AuthError (with the cause and the fix) when the
    server refuses, and whatever ``credentials_for`` raises (ReauthRequired...).
    """
    credentials = credentials_for(box, providers)
    try:
        return authenticate(credentials)
    except LoginRefused as refused:
        if credentials.kind != "xoauth2":
            raise diagnose_login_failure(str(refused), box) from None
    providers.for_subject(box).invalidate(AccessToken(credentials.secret, utcnow(), True))
    credentials = credentials_for(box, providers)
    try:
        return authenticate(credentials)
    except LoginRefused as refused:
        raise diagnose_login_failure(str(refused), box, token=credentials.secret) from None
