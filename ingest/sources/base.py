"""Contracts of the source hop: where a message came from, and what every source keeps.

A source is one connection to one mailbox folder. It only moves bytes: it hands
out new messages in batches, and touches the server (move, flag, delete) only
when the poller files messages whose records are already committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol, TypeVar

from ingest.auth import TokenProviders
from ingest.config import MailboxConfig
from ingest.errors import ConfigError


@dataclass(frozen=True)
class SourceRef:
    """A message's identity in its mailbox; ``source_key`` is unique per mailbox.

    IMAP: ``imap:<folder>:<uidvalidity>:<uid>``; POP3: ``pop3:<uidl>``;
    Maildir: ``maildir:<file name key>``; Graph: ``graph:<folder id>:<immutable id>``;
    a file given to the CLI: ``file:<path>``.
    """

    mailbox: str
    source_key: str
    folder: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None
    uidl: str | None = None
    filename: str | None = None
    received_at: datetime | None = None


# Sources ask the store which of these source keys are recorded already (POP3 has no UIDs
# to keep a cursor with, so the record itself is its memory).
RecordedLookup = Callable[[Sequence[str]], set[str]]
_T = TypeVar("_T")


@dataclass(frozen=True)
class Cursor:
    """How far a folder has been read: IMAP's UIDVALIDITY and the last filed UID.

    A source whose server keeps the position (Microsoft Graph's delta link) puts it in
    ``token``, and counts its steps in ``last_uid`` so a newer cursor still sorts after
    an older one.
    """

    uidvalidity: int | None = None
    last_uid: int = 0
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class FetchedMessage:
    """One message as the server holds it."""

    ref: SourceRef
    raw: bytes


@dataclass(frozen=True)
class FetchedBatch:
    """Messages fetched together, and the cursor once all of them are filed."""

    items: tuple[FetchedMessage, ...]
    cursor: Cursor


@dataclass(frozen=True)
class Filing:
    """A message whose record is committed, and where it is filed on the server."""

    ref: SourceRef
    quarantined: bool = False  # quarantined mail goes to the quarantine folder, if any


@dataclass(frozen=True)
class SourceOptions:
    """Tuning shared by every source; tests shorten the intervals."""

    batch_size: int = 200
    # A pass records and files its first batch before fetching more (poll_drain): nothing
    # overlaps it, so it is kept small.
    first_batch_size: int = 50
    timeout_seconds: float = 30.0
    # RFC 2177: servers may drop an IDLE after 30 minutes; Exchange does at 29.
    idle_renew_seconds: float = 25 * 60
    # The short first IDLE of each wait, after which the folder is searched once more.
    idle_settle_seconds: float = 0.5
    # How often a wait wakes to notice a shutdown request.
    wake_seconds: float = 1.0


@dataclass(frozen=True)
class SourceContext:
    """What a source is built from: its mailbox, how to log in, and the store's memory."""

    mailbox: MailboxConfig
    providers: TokenProviders
    recorded: RecordedLookup
    options: SourceOptions = SourceOptions()
    # A dry run changes nothing on the server: no folder is created, the folder is EXAMINEd.
    read_only: bool = False


def batches_of(items: Sequence[_T], options: SourceOptions) -> Iterator[Sequence[_T]]:
    """``items`` cut into the batches of one pass: a small first one, then full ones."""
    start, size = 0, min(options.first_batch_size, options.batch_size)
    while start < len(items):
        yield items[start:start + size]
        start, size = start + size, options.batch_size


class Source(Protocol):
    """One connection to one folder of one mailbox."""

    protocol: ClassVar[str]
    mailbox: MailboxConfig

    @property
    def folder(self) -> str:
        """The folder this source reads (the checkpoint is kept per mailbox and folder)."""
        ...

    def connect(self) -> None:
        """Open the connection, log in, open the folder; raises ackmail errors only."""
        ...

    def fetch(self, cursor: Cursor) -> Iterator[FetchedBatch]:
        """Every message not yet filed past ``cursor``, a batch at a time."""
        ...

    def file(self, filings: Sequence[Filing]) -> None:
        """Move, flag or delete messages on the server; only called after their commit."""
        ...

    def wait(self, stop: threading.Event) -> None:
        """Return when new mail may have arrived (IDLE), after the poll interval, or on stop."""
        ...

    def close(self) -> None:
        """Close the connection; never raises."""
        ...


SourceFactory = Callable[[SourceContext], Source]


def build_registry(*factories: tuple[str, SourceFactory]) -> Mapping[str, SourceFactory]:
    """The sources keyed by protocol; a protocol named twice is a programming error."""
    registry: dict[str, SourceFactory] = {}
    for protocol, factory in factories:
        if protocol in registry:
            raise ConfigError(f"two mailbox sources are registered for protocol '{protocol}'")
        registry[protocol] = factory
    return registry
