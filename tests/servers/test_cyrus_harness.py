"""The Cyrus IMAP harness, proven with the clients ackmail uses (imapclient, poplib)."""

from __future__ import annotations

import poplib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.servers.cyrus import CyrusHarnessError, CyrusServer, cyrus_programs
from tests.servers.cyrus_config import (
    CYRUS_DEBIAN,
    CYRUS_SHAPES,
    PACKAGED_IMAPD_CONF,
    CyrusShape,
)
from tests.servers.server_process import live_group_members
from tests.sources.mail import unrelated

across_cyrus_shapes = pytest.mark.parametrize("server_shape", CYRUS_SHAPES, indirect=True,
                                              ids=[shape.name for shape in CYRUS_SHAPES])


def _password(server: CyrusServer) -> str:
    password = server.users.bob.password
    assert password is not None
    return password.reveal()


@pytest.fixture
def bob(cyrus: CyrusServer) -> Iterator[IMAPClient]:
    """bob logged in over IMAPS (implicit TLS, trusting only the instance's CA)."""
    with IMAPClient(cyrus.host, cyrus.imaps_port, ssl=True, ssl_context=cyrus.client_context(),
                    timeout=10) as client:
        client.login(cyrus.users.bob.address, _password(cyrus))
        yield client


def test_greets_as_the_debian_package_on_loopback(cyrus: CyrusServer) -> None:
    with IMAPClient(cyrus.host, cyrus.imap_port, ssl=False, timeout=10) as client:
        assert b"Cyrus IMAP 3.6.1-Debian" in client.welcome
    pop = poplib.POP3(cyrus.host, cyrus.pop3_port, timeout=10)
    try:
        assert pop.getwelcome().startswith(b"+OK")
    finally:
        pop.quit()


def test_capabilities_ackmail_relies_on(bob: IMAPClient) -> None:
    assert {b"MOVE", b"UIDPLUS", b"IDLE", b"NAMESPACE"} <= set(bob.capabilities())


@across_cyrus_shapes
def test_namespace_and_folders_are_the_shapes(cyrus: CyrusServer, bob: IMAPClient,
                                              server_shape: CyrusShape) -> None:
    personal = bob.namespace().personal
    assert personal is not None
    assert personal[0] == (server_shape.prefix, server_shape.delimiter)
    cyrus.create_folder(cyrus.users.bob.address, "ackmail/processed")
    names = {name for _, _, name in bob.list_folders()}
    assert {"INBOX", server_shape.wire("ackmail"), server_shape.wire("ackmail/processed")} <= names


def test_a_slash_path_is_an_invalid_name_at_debians_settings(bob: IMAPClient) -> None:
    # What ackmail would meet if it sent the configured path as written.
    with pytest.raises(IMAPClient.Error, match="Invalid mailbox name"):
        bob.create_folder("ackmail/processed")
    with pytest.raises(IMAPClient.Error, match="Permission denied"):
        bob.create_folder("ackmail.processed")  # outside the personal namespace


def test_deliver_and_count(cyrus: CyrusServer, bob: IMAPClient) -> None:
    user = cyrus.users.bob.address
    cyrus.deliver(user, unrelated())
    assert cyrus.deliver_many(user, [unrelated() for _ in range(50)]) == 50
    assert cyrus.deliver_many(user, [unrelated()], folder="ackmail/processed") == 1
    assert bob.select_folder("INBOX")[b"EXISTS"] == 51
    assert (cyrus.list_folder(user), cyrus.list_folder(user, "ackmail/processed")) == (51, 1)


@across_cyrus_shapes
def test_reset_uidvalidity_keeps_the_mail_under_a_new_uidvalidity(cyrus: CyrusServer) -> None:
    user = cyrus.users.bob.address
    cyrus.deliver_many(user, [unrelated() for _ in range(3)], folder="ackmail/processed")
    before = cyrus.uidvalidity(user, "ackmail/processed")
    new = cyrus.reset_uidvalidity(user, "ackmail/processed")
    assert new == cyrus.uidvalidity(user, "ackmail/processed") != before
    assert cyrus.list_folder(user, "ackmail/processed") == 3


def test_pop3_lists_by_uidl_and_retrieves(cyrus: CyrusServer) -> None:
    user = cyrus.users.bob.address
    raw = unrelated()
    cyrus.deliver(user, raw)
    pop = poplib.POP3_SSL(cyrus.host, cyrus.pop3s_port, context=cyrus.client_context(),
                          timeout=10)
    try:
        pop.user(user)
        pop.pass_(_password(cyrus))
        (listing,) = pop.uidl()[1]
        assert re.fullmatch(rb"1 \d+\.1", listing)  # '<uidvalidity>.<uid>'
        assert b"\r\n".join(pop.retr(1)[1]) + b"\r\n" == raw
    finally:
        pop.quit()


def test_restart_keeps_ports_and_mail(cyrus: CyrusServer) -> None:
    user = cyrus.users.bob.address
    cyrus.deliver(user, unrelated())
    ports, old_pid = cyrus.ports, cyrus.pid
    cyrus.restart()
    assert cyrus.ports == ports and cyrus.pid != old_pid
    assert cyrus.list_folder(user) == 1


def test_stop_leaves_no_process(cyrus: CyrusServer, bob: IMAPClient) -> None:
    pgid = cyrus.pid
    assert pgid is not None and len(live_group_members(pgid)) >= 3  # master, idled, imapd
    cyrus.stop()
    assert live_group_members(pgid) == []
    assert not cyrus.running


def test_imapd_conf_is_debians_with_marked_changes(cyrus: CyrusServer) -> None:
    conf = cyrus.conf.read_text()
    for kept in ("altnamespace: no", "unixhierarchysep: no", "autocreate_quota: 0",
                 "allowplaintext: yes", "hashimapspool: true"):
        assert f"\n{kept}\n" in conf
    assert PACKAGED_IMAPD_CONF.read_text().count("\n") < conf.count("\n")
    paths = re.findall(r"^[a-z_-]+: (/\S*)$", conf, flags=re.MULTILINE)
    outside = [p for p in paths if not p.startswith(str(cyrus.root))]
    assert outside == ["/etc/ssl/certs"]  # tls_client_ca_dir, read-only


def test_missing_cyrus_names_the_install_script(tmp_path: Path) -> None:
    with pytest.raises(CyrusHarnessError, match=r"tests/servers/install\.sh"):
        cyrus_programs(daemons=tmp_path)


def test_default_shape_is_debians() -> None:
    assert (CYRUS_DEBIAN.prefix, CYRUS_DEBIAN.delimiter) == ("INBOX.", ".")
    assert CYRUS_DEBIAN.wire("ackmail/processed") == "INBOX.ackmail.processed"
    assert CYRUS_DEBIAN.user_mailbox("bob") == "user.bob"
