"""App certificates for tests, made with ``cryptography``: PEM pairs and PKCS#12 files."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ingest.config import CertificateConfig
from ingest.config.reader import Secret


@dataclass(frozen=True)
class AppCertificate:
    """A made certificate: how ackmail is configured with it, and what the IdP registers."""

    config: CertificateConfig
    pem: bytes
    not_after: datetime.datetime


def make_certificate(directory: Path, *, days: float = 365, pfx: bool = False,
                     passphrase: str | None = None, name: str = "app") -> AppCertificate:
    """A self-signed RSA certificate valid ``days`` from now (negative: expired)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ackmail {name}")])
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    not_after = now + datetime.timedelta(days=days)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(min(now, not_after) - datetime.timedelta(days=1))
            .not_valid_after(not_after).sign(key, hashes.SHA256()))
    secret = Secret(passphrase, "test") if passphrase else None
    protect = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
               else serialization.NoEncryption())
    pem = cert.public_bytes(serialization.Encoding.PEM)
    if pfx:
        file = directory / f"{name}.pfx"
        file.write_bytes(pkcs12.serialize_key_and_certificates(
            name.encode(), key, cert, None, protect))
        return AppCertificate(CertificateConfig(file, passphrase=secret), pem, not_after)
    file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    file.write_bytes(pem)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8, protect))
    return AppCertificate(CertificateConfig(file, key_file, secret), pem, not_after)
