"""IMAP against the real Dovecot: batched fetch, filing after commit, cursors, UIDVALIDITY."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

from imapclient import IMAPClient
from sqlalchemy import Engine, select

from ingest.auth import TokenProviders
from ingest.parse.base import ParseLimits
from ingest.parse.message import ParseOptions
from ingest.pipeline import PipelineConfig
from ingest.sources.base import Cursor, FetchedBatch, Filing, SourceContext
from ingest.sources.imap import ImapSource
from ingest.sources.registry import SOURCES
from ingest.store.db import read_session
from ingest.store.models import Checkpoint, Message, Request, RequestStatus
from ingest.timeutil import utcnow
from tests.servers.dovecot import DovecotServer
from tests.servers.dovecot_fixtures import across_shapes
from tests.sources.conftest import FAST_SOURCE, PollerFactory, imap_mailbox, poll_once
from tests.sources.mail import SECRET, message_count, reply, request_for, source_keys, unrelated


def _flags(server: DovecotServer, folder: str = "INBOX") -> list[tuple[bytes, ...]]:
    bob = server.users.bob
    assert bob.password is not None
    with IMAPClient(server.host, port=server.imaps_port, ssl_context=server.client_context(),
                    timeout=10) as client:
        client.login(bob.address, bob.password.reveal())
        client.select_folder(folder, readonly=True)
        return [data[b"FLAGS"] for data in client.fetch(client.search(), ["FLAGS"]).values()]


@across_shapes
def test_poll_once_records_each_message_then_moves_it(
        dovecot: DovecotServer, engine: Engine, make_poller: PollerFactory) -> None:
    request = request_for(engine)
    bob = dovecot.users.bob.address
    dovecot.deliver(bob, reply(request.recipients[0].token))
    dovecot.deliver_many(bob, [unrelated() for _ in range(4)])
    box = imap_mailbox(dovecot)

    summary = poll_once(make_poller, engine, box)

    (result,) = summary.mailboxes
    assert (result.processed, result.ignored, result.quarantined, result.error) == (1, 4, 0, None)
    assert dovecot.list_folder(bob) == 0
    assert dovecot.list_folder(bob, "ackmail/processed") == 5
    uidvalidity = dovecot.uidvalidity(bob)
    assert sorted(source_keys(engine)) == sorted(
        f"imap:INBOX:{uidvalidity}:{uid}" for uid in range(1, 6))
    with read_session(engine) as session:
        assert session.get_one(Request, request.id).status == RequestStatus.APPROVED
        checkpoint = session.scalars(select(Checkpoint)).one()
        assert (checkpoint.uidvalidity, checkpoint.last_uid) == (uidvalidity, 5)
        received = list(session.scalars(select(Message.received_at)))
    # INTERNALDATE (delivery time), not the messages' Date header from 2026-11-02.
    assert all(when and abs(utcnow() - when) < timedelta(minutes=5) for when in received)


def test_without_a_processed_folder_messages_are_flagged_seen_and_read_once(
        dovecot: DovecotServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    bob = dovecot.users.bob.address
    dovecot.deliver_many(bob, [unrelated() for _ in range(3)])
    box = imap_mailbox(dovecot, processed_folder=None)

    first = poll_once(make_poller, sqlite_engine, box)
    dovecot.deliver(bob, unrelated())
    second = poll_once(make_poller, sqlite_engine, box)

    assert (first.mailboxes[0].ignored, second.mailboxes[0].ignored) == (3, 1)
    assert second.mailboxes[0].duplicates == 0  # the cursor skipped what was read
    assert dovecot.list_folder(bob) == 4
    assert all(b"\\Seen" in flags for flags in _flags(dovecot))


class _BatchSpy(ImapSource):
    """The real IMAP source, noting the size of every batch it hands out."""

    sizes: ClassVar[list[int]] = []

    def fetch(self, cursor: Cursor) -> Iterator[FetchedBatch]:
        for batch in super().fetch(cursor):
            self.sizes.append(len(batch.items))
            yield batch


def test_fetch_comes_in_batches_in_uid_order(
        dovecot: DovecotServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    bob = dovecot.users.bob.address
    dovecot.deliver_many(bob, [unrelated() for _ in range(23)])
    _BatchSpy.sizes = []

    summary = poll_once(make_poller, sqlite_engine, imap_mailbox(dovecot),
                        source=replace(FAST_SOURCE, batch_size=5),
                        registry={**SOURCES, "imap": _BatchSpy})

    assert summary.mailboxes[0].ignored == 23
    assert _BatchSpy.sizes == [5, 5, 5, 5, 3]
    uids = [int(key.rsplit(":", 1)[1]) for key in source_keys(sqlite_engine)]
    assert uids == list(range(1, 24))


@across_shapes
def test_quarantined_messages_go_to_the_quarantine_folder(
        dovecot: DovecotServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    bob = dovecot.users.bob.address
    dovecot.deliver(bob, unrelated())
    dovecot.deliver(bob, unrelated() + b"x" * 6000)  # over the parse limit below
    box = imap_mailbox(dovecot, quarantine_folder="ackmail/quarantine")
    strict = PipelineConfig(ParseOptions(limits=ParseLimits(max_bytes=5000)), SECRET)

    summary = poll_once(make_poller, sqlite_engine, box, pipeline=strict)

    assert (summary.mailboxes[0].ignored, summary.mailboxes[0].quarantined) == (1, 1)
    assert dovecot.list_folder(bob, "ackmail/processed") == 1
    assert dovecot.list_folder(bob, "ackmail/quarantine") == 1
    assert dovecot.list_folder(bob) == 0


class _NoMove(ImapSource):
    """A server without the MOVE extension (RFC 6851)."""

    def connect(self) -> None:
        super().connect()
        self._capabilities.discard(b"MOVE")


@across_shapes
def test_without_move_messages_are_copied_flagged_and_expunged(
        dovecot: DovecotServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    bob = dovecot.users.bob.address
    dovecot.deliver_many(bob, [unrelated() for _ in range(3)])

    summary = poll_once(make_poller, sqlite_engine, imap_mailbox(dovecot),
                        registry={**SOURCES, "imap": _NoMove})

    assert summary.mailboxes[0].ignored == 3
    assert (dovecot.list_folder(bob), dovecot.list_folder(bob, "ackmail/processed")) == (0, 3)


@across_shapes
def test_a_new_uidvalidity_rescans_without_recording_twice(
        dovecot: DovecotServer, engine: Engine, make_poller: PollerFactory) -> None:
    bob = dovecot.users.bob.address
    dovecot.deliver_many(bob, [unrelated() for _ in range(4)])
    box = imap_mailbox(dovecot, processed_folder=None)  # flag mode: the messages stay
    poll_once(make_poller, engine, box)

    new_uidvalidity = dovecot.reset_uidvalidity(bob)
    dovecot.deliver(bob, unrelated())
    summary = poll_once(make_poller, engine, box)

    assert (summary.mailboxes[0].duplicates, summary.mailboxes[0].ignored) == (4, 1)
    assert message_count(engine) == 5
    with read_session(engine) as session:
        checkpoint = session.scalars(select(Checkpoint)).one()
    assert (checkpoint.uidvalidity, checkpoint.last_uid) == (new_uidvalidity, 5)


def test_acknowledge_ignores_refs_of_an_older_uidvalidity(
        dovecot: DovecotServer, sqlite_engine: Engine) -> None:
    bob = dovecot.users.bob.address
    dovecot.deliver(bob, unrelated())
    source = ImapSource(SourceContext(imap_mailbox(dovecot), _no_tokens(), lambda keys: set(),
                                      FAST_SOURCE))
    source.connect()
    try:
        (batch,) = list(source.fetch(Cursor()))
        stale = replace(batch.items[0].ref, uidvalidity=(source.uidvalidity or 0) - 1)
        source.file([Filing(stale)])
    finally:
        source.close()
    assert dovecot.list_folder(bob) == 1


def _no_tokens() -> TokenProviders:
    return TokenProviders(Path("/nonexistent"), None)
