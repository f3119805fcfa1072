"""Contracts of the source hop: where a message came from, as the store records it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SourceRef:
    """A message's identity in its mailbox; ``source_key`` is unique per mailbox.

    IMAP: ``imap:<folder>:<uidvalidity>:<uid>``; POP3: ``pop3:<uidl>``;
    Maildir: ``maildir:<file name key>``; a file given to the CLI: ``file:<path>``.
    """

    mailbox: str
    source_key: str
    folder: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None
    uidl: str | None = None
    filename: str | None = None
    received_at: datetime | None = None
