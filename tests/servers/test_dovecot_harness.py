"""The Dovecot harness, proven with the clients ackmail uses (imapclient, poplib).

Tokens are v1-shaped like Exchange Online's and signed here with the harness key, so
these tests do not depend on the test identity provider.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import poplib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.servers.dovecot import (
    AUDIENCE,
    DovecotHarnessError,
    DovecotServer,
    dovecot_binaries,
    live_group_members,
)
from tests.servers.dovecot_fixtures import (
    DovecotFactory,
    SigningKey,
    TcpProxyFactory,
    generate_signing_key,
)
from tests.servers.matrix_fixtures import across_dovecot_shapes
from tests.servers.tls import make_test_pki

DELEGATED_CLIENT_ID = "9e5f94bc-e8a4-4e73-b8be-63364c29d753"
USER_SCOPES = "IMAP.AccessAsUser.All POP.AccessAsUser.All"
APP_ROLES = ["IMAP.AccessAsApp", "POP.AccessAsApp"]
REFUSAL_SECONDS = 0.3


def user_claims(key: SigningKey, upn: str, **changes: Any) -> dict[str, Any]:
    """Claims of a delegated (v1) Exchange token for ``upn``; ``changes`` override."""
    now = int(time.time())
    claims = {"aud": AUDIENCE, "iss": key.issuer, "sub": str(uuid.uuid4()), "tid": key.tenant,
              "iat": now - 60, "nbf": now - 60, "exp": now + 3600, "appid": DELEGATED_CLIENT_ID,
              "idtyp": "user", "upn": upn, "scp": USER_SCOPES}
    return claims | changes


def app_claims(key: SigningKey, app_id: str, **changes: Any) -> dict[str, Any]:
    """Claims of an app-only (client credentials) token of ``app_id``."""
    claims = user_claims(key, "", appid=app_id, idtyp="app", roles=APP_ROLES) | changes
    del claims["upn"], claims["scp"]
    return claims


def sign(key: SigningKey, claims: dict[str, Any]) -> str:
    """An RS256 JWT with the header Dovecot requires (typ JWT, kid)."""
    return jwt.encode(claims, key.private_pem, algorithm="RS256",
                      headers={"kid": key.kid, "typ": "JWT"})


def message(subject: str, body: str = "Approved.\r\n") -> bytes:
    """A minimal RFC 5322 message."""
    return (f"From: carol@example.test\r\nTo: bob@example.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4()}@example.test>\r\n\r\n{body}").encode()


@pytest.fixture
def imaps(dovecot: DovecotServer) -> Iterator[IMAPClient]:
    """An unauthenticated IMAPS connection to ``dovecot``."""
    with IMAPClient(dovecot.host, dovecot.imaps_port, ssl=True,
                    ssl_context=dovecot.client_context(), timeout=10) as client:
        yield client


def bob_password(server: DovecotServer) -> str:
    password = server.users.bob.password
    assert password is not None
    return password.reveal()


def pop3_bearer(pop: poplib.POP3, mechanism: str, user: str, token: str) -> bytes:
    """AUTH XOAUTH2 / OAUTHBEARER by hand (poplib has neither); returns the final line.

    A refusal first comes as a '+ <error JSON>' continuation, which poplib's own
    command helpers would take for success: answer it with an empty line, then read.
    """
    if mechanism == "XOAUTH2":
        initial = f"user={user}\x01auth=Bearer {token}\x01\x01"
    else:
        initial = f"n,a={user},\x01auth=Bearer {token}\x01\x01"
    pop.sock.sendall(b"AUTH %s %s\r\n" % (mechanism.encode(), base64.b64encode(initial.encode())))
    line = pop.file.readline().rstrip()
    if line.startswith(b"+ "):  # a continuation, unlike '+OK'
        pop.sock.sendall(b"\r\n")
        line = pop.file.readline().rstrip()
    return line


# --- password logins, TLS


def test_password_login_over_imaps(imaps: IMAPClient, dovecot: DovecotServer) -> None:
    imaps.login(dovecot.users.bob.address, bob_password(dovecot))
    assert imaps.select_folder("INBOX")[b"EXISTS"] == 0


def test_wrong_password_is_refused_without_delay(imaps: IMAPClient,
                                                 dovecot: DovecotServer) -> None:
    for _ in range(3):  # the anvil penalty would grow from the second failure on
        started = time.monotonic()
        with pytest.raises(LoginError):
            imaps.login(dovecot.users.bob.address, "not-" + bob_password(dovecot))
        # ~1 ms; without 'nodelay' a refusal waits for the auth process's 500 ms flush
        assert time.monotonic() - started < REFUSAL_SECONDS


def test_starttls_on_the_plain_port(dovecot: DovecotServer) -> None:
    with IMAPClient(dovecot.host, dovecot.imap_port, ssl=False, timeout=10) as client:
        client.starttls(dovecot.client_context())
        client.login(dovecot.users.bob.address, bob_password(dovecot))
        assert client._imap.sock.version() in ("TLSv1.2", "TLSv1.3")


# --- OAuth2


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_delegated_token_opens_the_users_mailbox(imaps: IMAPClient, dovecot: DovecotServer,
                                                 harness_signing_key: SigningKey,
                                                 mechanism: str) -> None:
    alice = dovecot.users.alice.address
    token = sign(harness_signing_key, user_claims(harness_signing_key, alice))
    if mechanism == "XOAUTH2":
        imaps.oauth2_login(alice, token)
    else:
        imaps.oauthbearer_login(alice, token)
    assert imaps.select_folder("INBOX")[b"EXISTS"] == 0


def _other_key_token(key: SigningKey, upn: str) -> str:
    forger = generate_signing_key(key.issuer, key.kid)
    return sign(forger, user_claims(forger, upn))


BAD_TOKENS = {
    "expired": (lambda k, upn: sign(k, user_claims(k, upn, exp=int(time.time()) - 5)),
                "Token has expired"),
    "wrong audience": (lambda k, upn: sign(k, user_claims(k, upn, aud="https://graph.test")),
                       "client_id not found in aud field"),
    "wrong issuer": (lambda k, upn: sign(k, user_claims(k, upn, iss="https://evil.test/v2.0")),
                     "is not allowed"),
    "forged signature": (_other_key_token, "Bad signature"),
    "another user's token": (lambda k, upn: sign(k, user_claims(k, "bob@example.test")),
                             "did not match"),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_token_is_refused_and_the_log_says_why(imaps: IMAPClient, dovecot: DovecotServer,
                                                   harness_signing_key: SigningKey,
                                                   case: str) -> None:
    make_token, reason = BAD_TOKENS[case]
    alice = dovecot.users.alice.address
    token = make_token(harness_signing_key, alice)
    started = time.monotonic()
    with pytest.raises(LoginError):
        imaps.oauth2_login(alice, token)
    assert time.monotonic() - started < REFUSAL_SECONDS
    assert reason in dovecot.log_text()


def test_app_token_opens_only_granted_mailboxes(dovecot: DovecotServer,
                                                harness_signing_key: SigningKey) -> None:
    token = sign(harness_signing_key, app_claims(harness_signing_key, dovecot.app_id))
    with IMAPClient(dovecot.host, dovecot.imaps_port, ssl_context=dovecot.client_context(),
                    timeout=10) as client:
        client.oauth2_login(dovecot.users.shared.address, token)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    with IMAPClient(dovecot.host, dovecot.imaps_port, ssl_context=dovecot.client_context(),
                    timeout=10) as client, pytest.raises(LoginError):
        client.oauth2_login(dovecot.users.alice.address, token)


def test_a_delegates_token_opens_only_the_shared_mailbox_granted_to_it(
        dovecot: DovecotServer, harness_signing_key: SigningKey) -> None:
    shared = dovecot.users.shared.address
    for upn, opens in ((dovecot.users.alice.address, True), ("bob@example.test", False)):
        token = sign(harness_signing_key, user_claims(harness_signing_key, upn))
        with IMAPClient(dovecot.host, dovecot.imaps_port, ssl_context=dovecot.client_context(),
                        timeout=10) as client:
            if opens:
                client.oauth2_login(shared, token)
                assert client.select_folder("INBOX")[b"EXISTS"] == 0
            else:
                with pytest.raises(LoginError):
                    client.oauth2_login(shared, token)


def test_log_holds_no_token_or_password(imaps: IMAPClient, dovecot: DovecotServer,
                                        harness_signing_key: SigningKey) -> None:
    alice = dovecot.users.alice.address
    good = sign(harness_signing_key, user_claims(harness_signing_key, alice))
    bad = sign(harness_signing_key, user_claims(harness_signing_key, alice, aud="x"))
    with pytest.raises(LoginError):
        imaps.oauth2_login(alice, bad)
    imaps.oauth2_login(alice, good)
    log = dovecot.log_text()
    assert "Login: user=<alice@example.test>" in log
    for secret in (good, bad, good.split(".")[2], bob_password(dovecot)):
        assert secret not in log


# --- POP3


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_pop3s_bearer_login_uidl_and_retr(dovecot: DovecotServer,
                                          harness_signing_key: SigningKey,
                                          mechanism: str) -> None:
    alice = dovecot.users.alice.address
    dovecot.deliver(alice, message("first"))
    dovecot.deliver(alice, message("second"))
    token = sign(harness_signing_key, user_claims(harness_signing_key, alice))
    pop = poplib.POP3_SSL(dovecot.host, dovecot.pop3s_port, context=dovecot.client_context(),
                          timeout=10)
    try:
        assert pop3_bearer(pop, mechanism, alice, token).startswith(b"+OK")
        uidls = pop.uidl()[1]
        assert len(uidls) == 2 and len({line.split()[1] for line in uidls}) == 2
        assert b"Subject: second" in pop.retr(2)[1]
    finally:
        pop.quit()


def test_pop3s_refused_token_ends_in_err(dovecot: DovecotServer,
                                         harness_signing_key: SigningKey) -> None:
    alice = dovecot.users.alice.address
    token = sign(harness_signing_key, user_claims(harness_signing_key, alice, aud="x"))
    pop = poplib.POP3_SSL(dovecot.host, dovecot.pop3s_port, context=dovecot.client_context(),
                          timeout=10)
    try:
        assert pop3_bearer(pop, "XOAUTH2", alice, token).startswith(b"-ERR [AUTH]")
    finally:
        pop.quit()


# --- delivery, folders, IDLE, UIDVALIDITY


def test_deliver_then_select_counts(imaps: IMAPClient, dovecot: DovecotServer) -> None:
    bob = dovecot.users.bob.address
    for n in range(3):
        dovecot.deliver(bob, message(f"m{n}"))
    imaps.login(bob, bob_password(dovecot))
    assert imaps.select_folder("INBOX")[b"EXISTS"] == 3
    assert dovecot.list_folder(bob) == 3


@across_dovecot_shapes
def test_deliver_many_to_inbox_and_a_subfolder(imaps: IMAPClient, dovecot: DovecotServer) -> None:
    bob = dovecot.users.bob.address
    sent = [message(f"bulk {n}") for n in range(200)]
    assert dovecot.deliver_many(bob, sent) == 200
    assert dovecot.deliver_many(bob, sent[:5], folder="ackmail/processed") == 5
    imaps.login(bob, bob_password(dovecot))
    assert imaps.select_folder("INBOX")[b"EXISTS"] == 200
    bodies = {data[b"BODY[]"] for data in imaps.fetch(imaps.search(), ["BODY[]"]).values()}
    assert bodies == set(sent)
    assert imaps.select_folder(dovecot.shape.wire("ackmail/processed"))[b"EXISTS"] == 5
    assert dovecot.list_folder(bob, "ackmail/processed") == 5


def test_reset_uidvalidity_drops_sessions_that_have_the_folder_open(
        imaps: IMAPClient, dovecot: DovecotServer) -> None:
    bob = dovecot.users.bob.address
    imaps.login(bob, bob_password(dovecot))
    imaps.select_folder("INBOX")
    dovecot.reset_uidvalidity(bob)
    with pytest.raises(imaplib.IMAP4.abort):  # "IMAP session state is inconsistent"
        imaps.noop()


@across_dovecot_shapes
def test_create_folder_is_listed(imaps: IMAPClient, dovecot: DovecotServer) -> None:
    bob = dovecot.users.bob.address
    dovecot.create_folder(bob, "ackmail/quarantine")
    imaps.login(bob, bob_password(dovecot))
    names = {name for _, _, name in imaps.list_folders()}
    wire = dovecot.shape.wire
    assert {"INBOX", wire("ackmail"), wire("ackmail/quarantine")} <= names


# --- lifecycle


def test_restart_keeps_ports_and_mail(dovecot: DovecotServer) -> None:
    bob = dovecot.users.bob.address
    dovecot.deliver(bob, message("kept"))
    ports, old_pid = dovecot.ports, dovecot.pid
    dovecot.restart()
    assert dovecot.ports == ports and dovecot.pid != old_pid
    with IMAPClient(dovecot.host, dovecot.imaps_port, ssl_context=dovecot.client_context(),
                    timeout=10) as client:
        client.login(bob, bob_password(dovecot))
        assert client.select_folder("INBOX")[b"EXISTS"] == 1


def test_stop_leaves_no_process(dovecot: DovecotServer, imaps: IMAPClient) -> None:
    imaps.login(dovecot.users.bob.address, bob_password(dovecot))  # an imap process too
    pgid = dovecot.pid
    assert pgid is not None and len(live_group_members(pgid)) > 2
    dovecot.stop()
    assert live_group_members(pgid) == []
    assert not dovecot.running


def test_missing_dovecot_names_the_install_script(tmp_path: Path) -> None:
    with pytest.raises(DovecotHarnessError, match=r"tests/servers/install\.sh"):
        dovecot_binaries(search_path=str(tmp_path))


def test_factory_uses_the_given_issuer_key_and_pki(dovecot_factory: DovecotFactory,
                                                   tmp_path: Path) -> None:
    key = generate_signing_key("https://127.0.0.1:9/other-tenant/v2.0", "kid/with%odd")
    pki = make_test_pki(tmp_path / "shared-pki")
    server = dovecot_factory(issuer=key.issuer, public_key_pem=key.public_pem, kid=key.kid,
                             pki=pki)
    alice = server.users.alice.address
    with IMAPClient(server.host, server.imaps_port, ssl_context=pki.client_context(),
                    timeout=10) as client:
        client.oauth2_login(alice, sign(key, user_claims(key, alice)))


# --- TcpProxy against Dovecot


@contextlib.contextmanager
def bob_via(port: int, server: DovecotServer) -> Iterator[IMAPClient]:
    """Bob logged in with INBOX selected, through ``port``; the socket is closed after,
    even when the proxy has already reset it."""
    client = IMAPClient(server.host, port, ssl_context=server.client_context(), timeout=5)
    try:
        client.login(server.users.bob.address, bob_password(server))
        client.select_folder("INBOX")
        yield client
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.shutdown()


def test_proxy_cut_drops_live_sessions(dovecot: DovecotServer,
                                       tcp_proxy_factory: TcpProxyFactory) -> None:
    proxy = tcp_proxy_factory(dovecot.host, dovecot.imaps_port)
    with bob_via(proxy.port, dovecot) as client:
        assert proxy.live == 1
        proxy.cut()
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            client.noop()
    assert proxy.live == 0
    with bob_via(proxy.port, dovecot) as client:  # new connections still work
        assert client.noop()


def test_proxy_refuse_then_accept_again(dovecot: DovecotServer,
                                        tcp_proxy_factory: TcpProxyFactory) -> None:
    proxy = tcp_proxy_factory(dovecot.host, dovecot.imaps_port)
    proxy.refuse(True)
    # accepted, then reset without a greeting (the reset may even beat connect() home)
    with (pytest.raises(ConnectionResetError),
          socket.create_connection((proxy.host, proxy.port), timeout=5) as refused):
        refused.recv(64)
    proxy.refuse(False)
    with bob_via(proxy.port, dovecot) as client:
        assert client.noop()
    assert proxy.accepted == 2


def test_proxy_cuts_mid_fetch(dovecot: DovecotServer,
                              tcp_proxy_factory: TcpProxyFactory) -> None:
    big = message("large", ("x" * 78 + "\r\n") * 3000)  # ~240 kB
    dovecot.deliver(dovecot.users.bob.address, big)
    proxy = tcp_proxy_factory(dovecot.host, dovecot.imaps_port)
    with bob_via(proxy.port, dovecot) as client:
        proxy.cut_after_bytes(20_000)
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            client.fetch([1], ["BODY[]"])
    assert proxy.live == 0
