"""Pytest fixtures for the test identity provider (tests/servers/idp.py).

``idp`` is a fresh provider per test (own state, own port), stopped when the test
ends, pass or fail. The TLS material and the RS256 signing key are made once per
session, because key generation is the slow part. A provider that cannot start
fails the test: it is never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.servers.idp import IdentityProvider
from tests.servers.tls import TestPki, make_test_pki


@pytest.fixture(scope="session")
def idp_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """A CA and a 127.0.0.1/localhost server certificate for the provider."""
    return make_test_pki(Path(tmp_path_factory.mktemp("idp-tls")))


@pytest.fixture(scope="session")
def idp_signing_key() -> rsa.RSAPrivateKey:
    """The provider's RS256 key (kid mock-key-1), shared by every provider in the session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def idp(idp_pki: TestPki, idp_signing_key: rsa.RSAPrivateKey) -> Iterator[IdentityProvider]:
    """A running identity provider on 127.0.0.1 (ephemeral port), stopped after the test."""
    with IdentityProvider(idp_pki, idp_signing_key) as provider:
        yield provider
