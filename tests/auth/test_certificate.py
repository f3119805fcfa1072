"""Certificate credentials for app-only mailboxes, against the real test identity provider."""

from __future__ import annotations

import base64
import datetime
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ingest.auth import AuthError, TokenProviders, auth_status, credentials_for, decode_claims
from ingest.auth.certificate import load_certificate
from ingest.config import CertificateConfig, MailboxConfig
from ingest.config.reader import Secret
from ingest.errors import ConfigError
from tests.auth.certs import AppCertificate, make_certificate
from tests.auth.conftest import APP_ID, MailboxFactory
from tests.servers.idp import IdentityProvider
from tests.servers.idp_assertion import BAD_SIGNATURE, AssertionRefused, check_assertion

CLIENT_CREDENTIALS = "client_credentials"


def _mailbox(make_mailbox: MailboxFactory, cert: AppCertificate, **oauth: object) -> MailboxConfig:
    return make_mailbox("oauth2-app", client_secret=None, certificate=cert.config, **oauth)


def _assertion_header(idp: IdentityProvider) -> dict[str, object]:
    recorded = idp.assertions()
    assert recorded, "the provider saw no client assertion"
    return jwt.get_unverified_header(recorded[-1])


@pytest.mark.parametrize("pfx", [True, False], ids=["pkcs12", "pem"])
def test_certificate_signs_in_with_its_sha256_thumbprint(
        idp: IdentityProvider, providers: TokenProviders, make_mailbox: MailboxFactory,
        tmp_path: Path, pfx: bool) -> None:
    cert = make_certificate(tmp_path, pfx=pfx, passphrase="correct horse")
    idp.register_client(APP_ID, certificate_pem=cert.pem)

    login = credentials_for(_mailbox(make_mailbox, cert), providers)

    assert decode_claims(login.secret)["appid"] == APP_ID
    header = _assertion_header(idp)
    assert header["alg"] == "PS256" and "x5t#S256" in header and "x5t" not in header
    # A PEM pair goes to MSAL as public_certificate, which always sends x5c; PKCS#12 on request.
    assert ("x5c" in header) is not pfx


def test_pkcs12_sends_x5c_when_configured(idp: IdentityProvider, providers: TokenProviders,
                                          make_mailbox: MailboxFactory, tmp_path: Path) -> None:
    made = make_certificate(tmp_path, pfx=True)
    cert = AppCertificate(CertificateConfig(made.config.file, send_x5c=True), made.pem,
                          made.not_after)
    idp.register_client(APP_ID, certificate_pem=cert.pem)

    credentials_for(_mailbox(make_mailbox, cert), providers)

    chain = _assertion_header(idp)["x5c"]
    assert isinstance(chain, list)
    der = x509.load_pem_x509_certificate(cert.pem).public_bytes(serialization.Encoding.DER)
    assert base64.b64decode(chain[0]) == der


def test_unregistered_certificate_is_refused_as_key_not_found(
        idp: IdentityProvider, providers: TokenProviders, make_mailbox: MailboxFactory,
        tmp_path: Path) -> None:
    registered = make_certificate(tmp_path, name="registered")
    other = make_certificate(tmp_path, pfx=True, name="other")
    idp.register_client(APP_ID, certificate_pem=registered.pem)

    with pytest.raises(AuthError) as caught:
        credentials_for(_mailbox(make_mailbox, other), providers)

    assert caught.value.code == "AADSTS700027"
    assert "The key was not found" in caught.value.cause
    assert "Certificates & secrets" in caught.value.fix


def test_expired_certificate_is_refused_and_warned_about(
        idp: IdentityProvider, providers: TokenProviders, make_mailbox: MailboxFactory,
        tmp_path: Path, state_dir: Path, cache_key: Secret) -> None:
    cert = make_certificate(tmp_path, days=-2, pfx=True)
    idp.register_client(APP_ID, certificate_pem=cert.pem)
    mailbox = _mailbox(make_mailbox, cert)

    with pytest.raises(AuthError) as caught:
        credentials_for(mailbox, providers)
    status = auth_status(mailbox, state_dir=state_dir, cache_key=cache_key)

    assert caught.value.code == "AADSTS700027" and "expired" in caught.value.cause
    assert status.certificate_expires == cert.not_after
    assert any("client certificate expired" in text for text in status.warnings)


def test_signature_by_another_key_is_refused(tmp_path: Path) -> None:
    cert = make_certificate(tmp_path)
    thumbprint = base64.urlsafe_b64encode(bytes.fromhex(
        load_certificate("x", cert.config).sha256_thumbprint)).decode().rstrip("=")
    now = int(datetime.datetime.now(datetime.UTC).timestamp())
    forged = jwt.encode({"aud": "https://idp/token", "iss": APP_ID, "sub": APP_ID,
                         "exp": now + 600, "nbf": now},
                        rsa.generate_private_key(public_exponent=65537, key_size=2048),
                        algorithm="PS256", headers={"x5t#S256": thumbprint})

    with pytest.raises(AssertionRefused) as caught:
        check_assertion(cert.pem, forged, audience="https://idp/token", client_id=APP_ID)

    assert (caught.value.code, caught.value.reason) == (700027, BAD_SIGNATURE)


@pytest.mark.parametrize(("days", "warned"), [(10, True), (30, True), (31, False), (400, False)])
def test_certificate_expiry_warning_30_days_ahead(
        make_mailbox: MailboxFactory, tmp_path: Path, state_dir: Path, cache_key: Secret,
        days: int, warned: bool) -> None:
    cert = make_certificate(tmp_path, days=days)
    now = cert.not_after - datetime.timedelta(days=days)

    status = auth_status(_mailbox(make_mailbox, cert), state_dir=state_dir, cache_key=cache_key,
                         now=now)

    assert status.certificate_expires == cert.not_after
    texts = [text for text in status.warnings if "client certificate" in text]
    assert len(texts) == int(warned)
    if warned:
        assert f"in {days} days" in texts[0] and "certificate.file" in texts[0]


def test_wrong_passphrase_is_one_sentence(tmp_path: Path) -> None:
    cert = make_certificate(tmp_path, pfx=True, passphrase="right")
    wrong = CertificateConfig(cert.config.file, passphrase=Secret("Xq7-not-it", "test"))

    with pytest.raises(ConfigError, match=r"passphrase is wrong or missing") as caught:
        load_certificate("shared", wrong)

    assert "Xq7-not-it" not in str(caught.value) and "right" not in str(caught.value)


def test_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    one = make_certificate(tmp_path, name="one")
    two = make_certificate(tmp_path, name="two")
    mixed = CertificateConfig(one.config.file, two.config.key_file)

    with pytest.raises(ConfigError, match=r"does not belong to the certificate"):
        load_certificate("shared", mixed)


def test_pem_certificate_without_key_file_is_refused(tmp_path: Path) -> None:
    cert = make_certificate(tmp_path)

    with pytest.raises(ConfigError, match=r"add key_file"):
        load_certificate("shared", CertificateConfig(cert.config.file))
