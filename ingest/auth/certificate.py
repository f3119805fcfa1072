"""An app's certificate credential: read from its file, checked, and handed to MSAL.

MSAL signs the client assertion itself; this module reads the certificate first so a
wrong passphrase, a key that does not belong to the certificate, or a file of the wrong
kind is one sentence at start-up, and so the certificate's expiry can be warned about.
A PKCS#12 file goes to MSAL as ``private_key_pfx_path`` and a PEM pair as ``private_key``
+ ``public_certificate``; either way MSAL sends the SHA-256 thumbprint (``x5t#S256``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from ingest.config import CertificateConfig
from ingest.errors import ConfigError

PKCS12_SUFFIXES = (".pfx", ".p12")


@dataclass(frozen=True)
class LoadedCertificate:
    """What ackmail knows of a certificate: its expiry and thumbprint; never the key."""

    subject: str
    not_after: datetime
    sha256_thumbprint: str


def is_pkcs12(config: CertificateConfig) -> bool:
    """PKCS#12 when no separate key file is given and the name says .pfx/.p12."""
    return config.key_file is None and config.file.suffix.lower() in PKCS12_SUFFIXES


def load_certificate(name: str, config: CertificateConfig) -> LoadedCertificate:
    """Read and check the certificate (and that its key matches), raising ConfigError."""
    try:
        key, cert = _read_pair(name, config)
    except (ValueError, TypeError):  # cryptography's words for a wrong passphrase or format
        raise ConfigError(f"{name}: certificate {config.file} cannot be opened: the passphrase "
                          "is wrong or missing, or the file is not what its name says; set "
                          "certificate.passphrase or export the file again") from None
    if key.public_key() != cert.public_key():
        raise ConfigError(f"{name}: the private key in {config.key_file or config.file} does "
                          f"not belong to the certificate in {config.file}; configure the key "
                          "the certificate was issued for")
    return LoadedCertificate(cert.subject.rfc4514_string(), cert.not_valid_after_utc,
                             cert.fingerprint(hashes.SHA256()).hex())


def msal_credential(name: str, config: CertificateConfig) -> dict[str, str | bool]:
    """The ``client_credential`` dict MSAL's ConfidentialClientApplication takes."""
    load_certificate(name, config)
    passphrase = {"passphrase": config.passphrase.reveal()} if config.passphrase else {}
    if is_pkcs12(config):
        return {"private_key_pfx_path": str(config.file), "public_certificate": config.send_x5c,
                **passphrase}
    assert config.key_file is not None, "is_pkcs12 is false only with a key_file"
    # MSAL derives the SHA-256 thumbprint from public_certificate, and then always sends x5c.
    return {"private_key": config.key_file.read_text(encoding="ascii"),
            "public_certificate": config.file.read_text(encoding="ascii"), **passphrase}


def _read_pair(name: str, config: CertificateConfig) -> tuple[PrivateKeyTypes, x509.Certificate]:
    if config.key_file is None and not is_pkcs12(config):
        raise ConfigError(f"{name}: certificate file {config.file} is neither a .pfx nor a .p12 "
                          "file; give a PKCS#12 file, or add key_file = the PEM private key")
    password = config.passphrase.reveal().encode() if config.passphrase else None
    if config.key_file is None:
        return _read_pkcs12(name, config.file, password)
    cert = x509.load_pem_x509_certificate(_read(name, config.file, "certificate"))
    key = serialization.load_pem_private_key(_read(name, config.key_file, "key_file"), password)
    return key, cert


def _read_pkcs12(name: str, file: Path, password: bytes | None
                 ) -> tuple[PrivateKeyTypes, x509.Certificate]:
    key, cert, _ = pkcs12.load_key_and_certificates(_read(name, file, "certificate"), password)
    if key is None or cert is None:
        raise ConfigError(f"{name}: {file} holds no private key and certificate pair; export "
                          "the certificate with its private key")
    return key, cert


def _read(name: str, file: Path, what: str) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: {what} {file} cannot be read ({exc.strerror}); fix the path "
                          "or the file's permissions") from None
