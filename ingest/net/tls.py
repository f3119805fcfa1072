"""One TLS context builder for IMAP, POP3 and SMTP, and what a refused certificate means.

Certificate and host name checks are always on; ``ca_file`` adds trust to the system
store (a private CA). OpenSSL's verification message is turned into its cause and the
fix, so "self-signed certificate" tells the user to set ``ca_file``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import ConfigError


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


def client_context(ca_file: Path | None, owner: str) -> ssl.SSLContext:
    """A client context with full checks; ``owner`` names the settings in an error."""
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{owner}: ca_file {ca_file} cannot be loaded ({exc}); "
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
