"""Pytest fixtures that start a real Dovecot (and TCP proxies in front of servers).

``dovecot_factory(issuer=..., public_key_pem=...)`` starts an instance trusting any token
issuer, e.g. the test identity provider (``pki=`` shares its certificate authority);
``dovecot`` is one instance trusting the harness's own signing key
(``harness_signing_key``), for tests that mint tokens themselves. Every instance and
proxy is stopped when its test ends, pass or fail.

Both start Dovecot in the folder namespace of ``dovecot_shape``: Debian's packaged default
unless a test runs across the matrix (``tests/servers/matrix_fixtures.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.servers.dovecot import DEFAULT_APP_ID, DEFAULT_KID, DovecotServer, TokenTrust
from tests.servers.dovecot_shapes import DEBIAN_DEFAULT, DovecotShape
from tests.servers.imap_proxy import ExchangeProxy
from tests.servers.mail_server import FolderShape
from tests.servers.tcp_proxy import TcpProxy
from tests.servers.tls import TestPki

HARNESS_TENANT = "00000000-ac4a-4a11-8000-000000000001"
# Only compared as a string by Dovecot: nothing listens there.
HARNESS_ISSUER = f"https://127.0.0.1:8443/{HARNESS_TENANT}/v2.0"

@dataclass(frozen=True)
class SigningKey:
    """An RS256 key pair and the issuer/kid that tokens signed with it carry."""

    issuer: str
    kid: str
    tenant: str
    public_pem: bytes
    private_pem: bytes = field(repr=False)


class DovecotFactory(Protocol):
    """Starts a Dovecot that trusts tokens of ``issuer`` signed by ``public_key_pem``."""

    def __call__(self, *, issuer: str, public_key_pem: bytes, kid: str = DEFAULT_KID,
                 app_id: str = DEFAULT_APP_ID, pki: TestPki | None = None) -> DovecotServer: ...


class ExchangeProxyFactory(Protocol):
    """``exchange_proxy_factory(server)``: an Exchange-Online-like proxy in front of it."""

    def __call__(self, server: DovecotServer) -> ExchangeProxy: ...


class TcpProxyFactory(Protocol):
    """Starts a TcpProxy in front of ``host``:``port``."""

    def __call__(self, host: str, port: int) -> TcpProxy: ...


def generate_signing_key(issuer: str = HARNESS_ISSUER, kid: str = DEFAULT_KID) -> SigningKey:
    """A fresh RSA-2048 key pair in PEM form."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return SigningKey(issuer, kid, HARNESS_TENANT, public, private)


@pytest.fixture(scope="session")
def harness_signing_key() -> SigningKey:
    """The key the default ``dovecot`` trusts; sign test tokens with ``private_pem``."""
    return generate_signing_key()


@pytest.fixture
def dovecot_shape(server_shape: FolderShape) -> DovecotShape:
    """The folder namespace Dovecot is started with (``across_shapes`` varies it)."""
    return server_shape if isinstance(server_shape, DovecotShape) else DEBIAN_DEFAULT


@pytest.fixture
def dovecot_factory(dovecot_shape: DovecotShape) -> Iterator[DovecotFactory]:
    """Start as many Dovecot instances as a test needs; all are stopped and removed after it."""
    started: list[DovecotServer] = []

    def start(*, issuer: str, public_key_pem: bytes, kid: str = DEFAULT_KID,
              app_id: str = DEFAULT_APP_ID, pki: TestPki | None = None) -> DovecotServer:
        server = DovecotServer(TokenTrust(issuer, public_key_pem, kid), app_id=app_id, pki=pki,
                               shape=dovecot_shape)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.close()


@pytest.fixture
def dovecot(dovecot_factory: DovecotFactory, harness_signing_key: SigningKey) -> DovecotServer:
    """A running Dovecot trusting ``harness_signing_key`` (users: bob, alice, shared)."""
    return dovecot_factory(issuer=harness_signing_key.issuer,
                           public_key_pem=harness_signing_key.public_pem,
                           kid=harness_signing_key.kid)


@pytest.fixture
def tcp_proxy_factory() -> Iterator[TcpProxyFactory]:
    """Start loopback proxies (for fault tests); all are closed after the test."""
    proxies: list[TcpProxy] = []

    def start(host: str, port: int) -> TcpProxy:
        proxies.append(TcpProxy(host, port))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def exchange_proxy_factory() -> Iterator[ExchangeProxyFactory]:
    """Start proxies that answer as Exchange Online does; all are closed after the test."""
    proxies: list[ExchangeProxy] = []

    def start(server: DovecotServer) -> ExchangeProxy:
        proxies.append(ExchangeProxy(server))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()
