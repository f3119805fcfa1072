"""How the test identity provider judges a client assertion (a JWT signed with the app's key).

Entra refuses a bad assertion with AADSTS700027 and names the cause in ``[Reason - ...]``:
the thumbprint in ``x5t#S256`` (or the legacy SHA-1 ``x5t``) names no registered key, the
key is expired, or the signature does not verify; AADSTS700024 is an assertion outside
its valid time range. The reasons below follow Entra's wording.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

NOT_FOUND = "The key was not found."
EXPIRED = "The key used is expired."
BAD_SIGNATURE = "The provided signature value did not match the expected signature value."


class AssertionRefused(Exception):
    """The AADSTS code and the ``[Reason - ...]`` text of a refused assertion."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code, self.reason = code, reason


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def check_assertion(registered_pem: bytes | None, assertion: str, *, audience: str,
                    client_id: str) -> None:
    """Raise AssertionRefused unless ``assertion`` is signed by the registered certificate."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise AssertionRefused(700027, BAD_SIGNATURE) from None
    sent = header.get("x5t#S256") or header.get("x5t")
    if registered_pem is None or sent is None:
        raise AssertionRefused(700027, NOT_FOUND)
    cert = x509.load_pem_x509_certificate(registered_pem)
    known = {_b64(cert.fingerprint(hashes.SHA256())), _b64(cert.fingerprint(hashes.SHA1()))}
    if str(sent).rstrip("=") not in known:
        raise AssertionRefused(700027, NOT_FOUND)
    if cert.not_valid_after_utc < datetime.now(UTC):
        raise AssertionRefused(700027, EXPIRED)
    try:
        jwt.decode(assertion, cert.public_key(), algorithms=["RS256", "PS256"],  # type: ignore[arg-type]
                   audience=audience, issuer=client_id)
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
        raise AssertionRefused(700024, "the assertion is outside its valid time range") from None
    except jwt.PyJWTError:
        raise AssertionRefused(700027, BAD_SIGNATURE) from None
