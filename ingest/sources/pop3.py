"""POP3: UIDL-keyed fetching, ``delete_after`` applied only after commit.

POP3 has no UIDVALIDITY and no cursor: the source key ``pop3:<uidl>`` is the
identity, and the store's record is the memory of what was read. A POP3 session
sees the maildrop as it was at login and makes DELEs final only at QUIT, so a
wait ends the session (QUIT) and the next poll logs in again; a session that breaks
before QUIT leaves every message on the server, to be found recorded next time.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import logging
import poplib
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import ClassVar

from ingest.sources.base import (
    Cursor,
    FetchedBatch,
    FetchedMessage,
    Filing,
    SourceContext,
    SourceRef,
    batches_of,
)
from ingest.sources.connect import boundary, log_in
from ingest.sources.pop3_session import close_pop3, open_pop3, pop3_authenticate
from ingest.timeutil import as_utc

log = logging.getLogger(__name__)
_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)


def received_at(raw: bytes) -> datetime | None:
    """When the receiving server stamped the message: the date of its first Received header."""
    header = _HEADERS.parsebytes(raw).get("Received")
    if not header or ";" not in header:
        return None
    try:
        return as_utc(email.utils.parsedate_to_datetime(header.rsplit(";", 1)[1].strip()))
    except (TypeError, ValueError):
        return None


class Pop3Source:
    """One POP3 session at a time on one mailbox."""

    protocol: ClassVar[str] = "pop3"

    def __init__(self, context: SourceContext) -> None:
        self.context = context
        self.mailbox = context.mailbox
        self.options = context.options
        self._pop: poplib.POP3 | None = None
        self._numbers: dict[str, int] = {}  # uidl -> message number in this session
        self.mechanism: str | None = None

    @property
    def folder(self) -> str:
        return "INBOX"  # POP3 sees only the inbox

    @property
    def pop(self) -> poplib.POP3:
        if self._pop is None:
            raise RuntimeError("connect() the source first")
        return self._pop

    def connect(self) -> None:
        """Connect and log in (USER/PASS, or AUTH XOAUTH2/OAUTHBEARER)."""
        box = self.mailbox
        pop = open_pop3(box, self.options.timeout_seconds)
        try:
            self.mechanism = log_in(box, self.context.providers,
                                    lambda login: pop3_authenticate(pop, box, login))
        except BaseException:
            close_pop3(pop, commit=False)
            raise
        self._pop = pop
        self._numbers = {}

    def fetch(self, cursor: Cursor) -> Iterator[FetchedBatch]:
        """Messages not recorded yet; with ``delete_after``, every message still there (a
        recorded one is left only by a crash before its DELE, and is deleted now)."""
        with boundary(self.mailbox, "listing messages (UIDL)"):
            listing = self.pop.uidl()[1]
        self._numbers = dict(_uidl_entry(line) for line in listing)
        pending = list(self._numbers)
        if not self.mailbox.delete_after:
            known = self.context.recorded([_key(uidl) for uidl in pending])
            pending = [uidl for uidl in pending if _key(uidl) not in known]
        for chunk in batches_of(pending, self.options):
            yield FetchedBatch(tuple(self._retrieve(uidl) for uidl in chunk), cursor)

    def _retrieve(self, uidl: str) -> FetchedMessage:
        with boundary(self.mailbox, f"retrieving message {uidl}"):
            lines = self.pop.retr(self._numbers[uidl])[1]
        raw = b"\r\n".join(lines) + b"\r\n"
        ref = SourceRef(mailbox=self.mailbox.name, source_key=_key(uidl), folder=self.folder,
                        uidl=uidl, received_at=received_at(raw))
        return FetchedMessage(ref, raw)

    def file(self, filings: Sequence[Filing]) -> None:
        """Mark messages for deletion when ``delete_after``; QUIT makes it final."""
        if not self.mailbox.delete_after:
            return
        for done in filings:
            number = self._numbers.get(done.ref.uidl or "")
            if number is not None:
                with boundary(self.mailbox, f"deleting message {done.ref.uidl}"):
                    self.pop.dele(number)

    def wait(self, stop: threading.Event) -> None:
        """End the session (making deletions final), wait the poll interval, log in again."""
        self.close()
        if not stop.wait(self.mailbox.poll_interval_seconds):
            self.connect()

    def close(self) -> None:
        """QUIT: only committed messages were marked deleted, so the deletions can stand."""
        pop, self._pop = self._pop, None
        if pop is not None:
            close_pop3(pop, commit=True)


def _uidl_entry(line: bytes) -> tuple[str, int]:
    number, uidl = line.decode("ascii", errors="replace").split(None, 1)
    return uidl.strip(), int(number)


def _key(uidl: str) -> str:
    return f"pop3:{uidl}"
