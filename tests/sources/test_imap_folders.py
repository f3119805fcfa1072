"""Folder paths written with '/' in the server's own form, on every Dovecot shape."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from ingest.auth import TokenProviders
from ingest.sources.base import SourceContext
from ingest.sources.connect import ServerRefused
from ingest.sources.imap import ImapSource
from ingest.sources.imap_folders import FolderNameInvalid, Namespace, wire_name, wire_names
from tests.servers.dovecot import DovecotServer
from tests.servers.mail_server import MailServer
from tests.servers.matrix_fixtures import across_all_namespaces, across_servers
from tests.sources.conftest import FAST_SOURCE, PollerFactory, imap_mailbox, poll_once
from tests.sources.mail import unrelated

DOT = Namespace("", ".")
PREFIXED = Namespace("INBOX.", ".")


def _box(server: MailServer, **overrides: object) -> ImapSource:
    return ImapSource(SourceContext(imap_mailbox(server, **overrides),
                                    TokenProviders(Path("/nonexistent"), None),
                                    lambda keys: set(), FAST_SOURCE))


@pytest.mark.parametrize(("namespace", "path", "expected"), [
    (DOT, "ackmail/processed", ["ackmail", "ackmail.processed"]),
    (PREFIXED, "ackmail/processed", ["INBOX.ackmail", "INBOX.ackmail.processed"]),
    (Namespace("", "/"), "ackmail/processed", ["ackmail", "ackmail/processed"]),
    (PREFIXED, "inbox", ["INBOX"]),
    (PREFIXED, "Inbox/sub", ["INBOX", "INBOX.sub"]),
])
def test_paths_take_the_servers_prefix_and_delimiter(
        dovecot: DovecotServer, namespace: Namespace, path: str, expected: list[str]) -> None:
    assert wire_names(imap_mailbox(dovecot), path, namespace) == expected


@pytest.mark.parametrize(("path", "says"), [
    ("ackmail/v1.2", "write 'ackmail/v1/2'"),
    ("ackmail//processed", "empty level"),
    ("/ackmail", "empty level"),
])
def test_a_path_the_server_cannot_hold_is_one_sentence(
        dovecot: DovecotServer, path: str, says: str) -> None:
    with pytest.raises(FolderNameInvalid) as caught:
        wire_name(imap_mailbox(dovecot), path, DOT)
    message = str(caught.value)
    assert f"'{path}'" in message and says in message and "\n" not in message


def test_a_dot_in_a_level_is_refused_at_start_naming_folder_and_delimiter(
        dovecot: DovecotServer) -> None:
    source = _box(dovecot, processed_folder="ackmail/v1.2")
    with pytest.raises(FolderNameInvalid, match=r"'ackmail/v1\.2'.*delimiter is '\.'"):
        source.connect()


@across_all_namespaces
def test_nested_non_ascii_destinations_are_created_with_their_parents(
        mail_server: MailServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    bob = mail_server.users.bob.address
    mail_server.deliver_many(bob, [unrelated() for _ in range(2)])
    box = imap_mailbox(mail_server, processed_folder="ackmail/geprüft/2026")

    summary = poll_once(make_poller, sqlite_engine, box)

    assert summary.mailboxes[0].error is None
    assert mail_server.list_folder(bob) == 0
    assert mail_server.list_folder(bob, "ackmail/geprüft/2026") == 2


@across_servers
def test_a_refused_create_names_the_command_and_the_folder(mail_server: MailServer) -> None:
    # Over both servers' limits: Dovecot's 255 bytes a level, Cyrus' 490 a name.
    source = _box(mail_server, processed_folder="ackmail/" + "x" * 600)
    with pytest.raises(ServerRefused, match=r"refused CREATE of folder '[^']*x{600}'"):
        source.connect()
