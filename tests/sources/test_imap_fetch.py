"""The FETCH reader gives what imapclient's parser gives, for every shape of response."""

from __future__ import annotations

from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient.response_parser import parse_fetch_response

from ingest.sources import imap_fetch
from ingest.sources.imap_fetch import fetch_messages, read_response
from tests.servers.dovecot import DovecotServer
from tests.sources.mail import reply, unrelated

BODY = b"From: a@example.test\r\nSubject: (x) \"quoted\" {3}\r\n\r\nUID 7 ) BODY[] {1}\r\n"


def _imapclient(data: list[Any]) -> dict[int, dict[bytes, Any]]:
    """imapclient's own reading (zones kept, UIDs as keys) of what ackmail uses."""
    return _used(parse_fetch_response(data, False, True))


def _used(response: dict[int, dict[bytes, Any]]) -> dict[int, dict[bytes, Any]]:
    return {uid: {key: value for key, value in items.items()
                  if key in (b"BODY[]", b"INTERNALDATE")} for uid, items in response.items()}


SIZE = len(BODY)
SHAPES = {
    "dovecot": [(b'1 (UID 11 INTERNALDATE "23-Nov-2026 05:48:11 +0000" BODY[] {%d}' % SIZE, BODY),
                b")"],
    "date first, flags, zone west, padded day": [
        (b'2 (INTERNALDATE " 3-Feb-2026 23:59:59 -0530" FLAGS (\\Seen $Forwarded) UID 12 '
         b'BODY[] {%d}' % SIZE, BODY), b")"],
    "no date": [(b"3 (UID 13 BODY[] {%d}" % SIZE, BODY), b")"],
    "unreadable date": [(b'4 (UID 14 INTERNALDATE "31-Feb-2026 00:00:00 +0000" BODY[] {%d}' % SIZE,
                         BODY), b")"],
    "attributes after the body": [(b"5 (BODY[] {%d}" % SIZE, BODY),
                                  b' UID 15 INTERNALDATE "23-Nov-2026 05:48:11 +0000")'],
    "an unsolicited FETCH": [(b"6 (UID 16 BODY[] {%d}" % SIZE, BODY), b")", b"9 (FLAGS (\\Seen))"],
    "another quoted attribute": [
        (b'7 (UID 17 X-GM-LABELS ("UID 99") INTERNALDATE "23-Nov-2026 05:48:11 +0000" '
         b'BODY[] {%d}' % SIZE, BODY), b")"],
    "nothing found": [None],
    "several messages": [
        (b'1 (UID 21 INTERNALDATE "23-Nov-2026 05:48:11 +0100" BODY[] {%d}' % SIZE, BODY), b")",
        (b'2 (UID 22 INTERNALDATE "24-Dec-2026 00:00:01 +0000" BODY[] {2}', b"ab"), b")"],
}


@pytest.mark.parametrize("data", SHAPES.values(), ids=SHAPES.keys())
def test_each_shape_reads_as_imapclient_reads_it(data: list[Any]) -> None:
    assert read_response(data) == _imapclient(data)


def test_the_common_shape_does_not_need_imapclients_parser(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any) -> None:
        raise AssertionError("imapclient's parser was used")
    monkeypatch.setattr(imap_fetch, "parse_fetch_response", refuse)
    for shape in ("dovecot", "date first, flags, zone west, padded day", "several messages"):
        assert read_response(SHAPES[shape]) == _imapclient(SHAPES[shape])


def test_a_real_server_fetch_matches_imapclients_fetch(dovecot: DovecotServer) -> None:
    bob = dovecot.users.bob
    assert bob.password is not None
    dovecot.deliver_many(bob.address, [unrelated(), reply("ABCD-2345"), BODY])
    with IMAPClient(dovecot.host, port=dovecot.imaps_port, ssl_context=dovecot.client_context(),
                    timeout=10) as client:
        client.login(bob.address, bob.password.reveal())
        client.select_folder("INBOX", readonly=True)
        client.normalise_times = False
        uids = [*client.search(), 999]  # one UID that does not exist
        ours = fetch_messages(client, uids)
        theirs = client.fetch(uids, [b"BODY.PEEK[]", b"INTERNALDATE"])
    assert len(ours) == 3
    assert ours == _used(theirs)
