"""The interface every server of the matrix gives the tests (``MailServer``), proven the same
way on Dovecot and on Cyrus with the client ackmail uses (imapclient)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from imapclient import IMAPClient

from tests.servers.mail_server import MailServer
from tests.servers.matrix_fixtures import across_servers
from tests.sources.mail import unrelated

pytestmark = across_servers


@pytest.fixture
def bob(mail_server: MailServer) -> Iterator[IMAPClient]:
    """bob logged in over IMAPS (implicit TLS, trusting only the instance's CA)."""
    password = mail_server.users.bob.password
    assert password is not None
    with IMAPClient(mail_server.host, mail_server.imaps_port, ssl=True,
                    ssl_context=mail_server.client_context(), timeout=10) as client:
        client.login(mail_server.users.bob.address, password.reveal())
        yield client


def test_idle_wakes_up_on_delivery(mail_server: MailServer, bob: IMAPClient) -> None:
    bob.select_folder("INBOX")
    bob.idle()
    started = time.monotonic()
    delivery = threading.Thread(target=mail_server.deliver,
                                args=(mail_server.users.bob.address, unrelated()))
    delivery.start()
    responses = bob.idle_check(timeout=2)
    latency = time.monotonic() - started
    delivery.join()
    bob.idle_done()
    assert (1, b"EXISTS") in responses
    assert latency < 2.0  # Cyrus: only with idled, else imapd looks every 60 s


def test_reset_uidvalidity_changes_it_and_keeps_the_mail(mail_server: MailServer,
                                                         bob: IMAPClient) -> None:
    user = mail_server.users.bob.address
    mail_server.deliver(user, unrelated())
    before = bob.select_folder("INBOX")[b"UIDVALIDITY"]
    bob.close_folder()
    new = mail_server.reset_uidvalidity(user)
    selected = bob.select_folder("INBOX")
    assert new == selected[b"UIDVALIDITY"] != before
    assert selected[b"EXISTS"] == mail_server.list_folder(user) == 1
