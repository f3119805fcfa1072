"""IMAP: batched UID FETCH past a UIDVALIDITY/UID cursor, IDLE for push, move after commit.

Nothing is marked \\Seen while reading (BODY.PEEK). A message leaves the folder (or
gets \\Seen) only in ``file``, which the poller calls after the record is
committed; a crash in between leaves it where it was, the next run fetches it
again, and the pipeline reports it as a duplicate before it is moved.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

from imapclient import DELETED, SEEN, IMAPClient

from ingest.auth import LoginCredentials
from ingest.config.reader import Secret
from ingest.errors import UserError
from ingest.sources.base import (
    Cursor,
    FetchedBatch,
    FetchedMessage,
    Filing,
    SourceContext,
    SourceRef,
    batches_of,
)
from ingest.sources.connect import boundary, log_in, session_ended
from ingest.sources.imap_fetch import fetch_messages
from ingest.sources.imap_folders import Namespace, server_namespace, wire_name, wire_names
from ingest.sources.imap_session import close_imap, imap_authenticate, open_imap
from ingest.timeutil import as_utc

log = logging.getLogger(__name__)


class FolderMissing(UserError):
    """The configured folder does not exist on the server."""


class ImapSource:
    """One IMAP connection watching one folder."""

    protocol: ClassVar[str] = "imap"

    def __init__(self, context: SourceContext) -> None:
        self.context = context
        self.mailbox = context.mailbox
        self.options = context.options
        self._client: IMAPClient | None = None
        self._capabilities: set[bytes] = set()
        self.uidvalidity: int | None = None
        self.mechanism: str | None = None
        self._read_up_to = 0  # the highest UID handed out in this session
        self._namespace = Namespace("", "/")
        self._token: Secret | None = None  # the session's access token, for a diagnosis

    @property
    def folder(self) -> str:
        return self.mailbox.folder

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise RuntimeError("connect() the source first")
        return self._client

    def connect(self) -> None:
        """Connect, log in, create the destination folders, select the watched folder."""
        box = self.mailbox
        client = open_imap(box, self.options.timeout_seconds)
        try:
            self.mechanism = log_in(box, self.context.providers,
                                    lambda login: self._authenticate(client, login))
            # Exchange Online accepts a token and then refuses the session's first command.
            with boundary(box, "reading the server's capabilities and namespace",
                          token=self._token):
                self._capabilities = {cap.upper() for cap in client.capabilities()}
                self._namespace = server_namespace(client, self._capabilities)
            watched = self._wire(box.folder)
            for destination in (box.processed_folder, box.quarantine_folder):
                if destination:
                    self._wire(destination)  # refuse a path the server cannot hold up front
            if not self.context.read_only:
                self._create_destinations(client)
            with boundary(box, f"SELECT of folder '{box.folder}'", token=self._token):
                if not client.folder_exists(watched):
                    raise FolderMissing(
                        f"mailbox '{box.name}': the folder '{box.folder}' does not exist on "
                        f"{box.host}; fix folder in its [[mailbox]] table"
                    )
                selected = client.select_folder(watched, readonly=self.context.read_only)
        except BaseException:
            close_imap(client)
            raise
        self._client = client
        self.uidvalidity = int(selected[b"UIDVALIDITY"])

    def _authenticate(self, client: IMAPClient, credentials: LoginCredentials) -> str:
        self._token = credentials.secret if credentials.kind == "xoauth2" else None
        return imap_authenticate(client, self.mailbox, credentials)

    def _create_destinations(self, client: IMAPClient) -> None:
        box = self.mailbox
        wanted = (box.processed_folder, box.quarantine_folder)
        for folder in dict.fromkeys(name for name in wanted if name):
            # Some servers (Courier, Cyrus) do not create missing parents themselves.
            for name in wire_names(box, folder, self._namespace):
                with boundary(box, f"CREATE of folder '{name}' (for '{folder}')"):
                    if not client.folder_exists(name):
                        log.info("mailbox '%s': creating folder '%s'", box.name, name)
                        client.create_folder(name)

    def _wire(self, folder: str) -> str:
        return wire_name(self.mailbox, folder, self._namespace)

    def fetch(self, cursor: Cursor) -> Iterator[FetchedBatch]:
        """Messages with a UID above the cursor (all of them after a UIDVALIDITY change)."""
        start = cursor.last_uid
        if cursor.uidvalidity != self.uidvalidity:
            if cursor.uidvalidity is not None:
                log.warning("mailbox '%s': UIDVALIDITY of '%s' changed from %s to %s; "
                            "re-reading the folder (recorded messages are not recorded twice)",
                            self.mailbox.name, self.folder, cursor.uidvalidity, self.uidvalidity)
            start = 0
        uids = self._uids_after(start)
        self._read_up_to = uids[-1] if uids else start
        if not uids:
            yield FetchedBatch((), Cursor(self.uidvalidity, start))
            return
        for chunk in batches_of(uids, self.options):
            with boundary(self.mailbox, f"fetching {len(chunk)} messages"):
                response = fetch_messages(self.client, chunk)
            # A message expunged since the SEARCH is simply absent from the answer.
            items = tuple(self._fetched(uid, response[uid]) for uid in chunk
                          if b"BODY[]" in response.get(uid, {}))
            yield FetchedBatch(items, Cursor(self.uidvalidity, chunk[-1]))

    def _uids_after(self, uid: int) -> list[int]:
        with boundary(self.mailbox, "searching for new messages"):
            # "n:*" always matches the last message, even below n: filter.
            return sorted(found for found in self.client.search(["UID", f"{uid + 1}:*"])
                          if found > uid)

    def _fetched(self, uid: int, data: dict[bytes, Any]) -> FetchedMessage:
        internal: datetime | None = data.get(b"INTERNALDATE")
        ref = SourceRef(
            mailbox=self.mailbox.name,
            source_key=f"imap:{self.folder}:{self.uidvalidity}:{uid}",
            folder=self.folder,
            uidvalidity=self.uidvalidity,
            uid=uid,
            received_at=as_utc(internal) if internal else None,
        )
        return FetchedMessage(ref, bytes(data[b"BODY[]"]))

    def file(self, filings: Sequence[Filing]) -> None:
        """Move each message to its destination folder, or flag it \\Seen where there is none."""
        by_destination: dict[str | None, list[int]] = {}
        for done in filings:
            if done.ref.uid is not None and done.ref.uidvalidity == self.uidvalidity:
                destination = self._destination(done.quarantined)
                by_destination.setdefault(destination, []).append(done.ref.uid)
        for destination, uids in by_destination.items():
            if destination is None:
                with boundary(self.mailbox, f"flagging {len(uids)} processed messages \\Seen"):
                    self.client.add_flags(uids, [SEEN], silent=True)
            else:
                self._move(uids, destination)
        # imaplib keeps every untagged EXPUNGE/COPYUID it was sent and nothing reads them
        # back: without this a long session would grow by one per message moved.
        self._untagged().clear()

    def _destination(self, quarantined: bool) -> str | None:
        box = self.mailbox
        if quarantined and box.quarantine_folder:
            return box.quarantine_folder
        return box.processed_folder

    def _move(self, uids: list[int], destination: str) -> None:
        client, box = self.client, self.mailbox
        target = self._wire(destination)
        if b"MOVE" in self._capabilities:
            with boundary(box, f"MOVE of {len(uids)} messages to folder '{destination}'"):
                client.move(uids, target)
            return
        with boundary(box, f"COPY of {len(uids)} messages to folder '{destination}'"):
            client.copy(uids, target)
            client.add_flags(uids, [DELETED], silent=True)
        with boundary(box, f"EXPUNGE of {len(uids)} moved messages from folder '{box.folder}'"):
            if b"UIDPLUS" in self._capabilities:
                client.uid_expunge(uids)
            else:
                # Without UIDPLUS an EXPUNGE also removes other \Deleted messages of the folder.
                client.expunge()

    def wait(self, stop: threading.Event) -> None:
        """IDLE until new mail, renewing before the server's limit; else the poll interval."""
        if self.mailbox.idle and b"IDLE" in self._capabilities:
            if not self._pending():
                self._idle(stop)
        else:
            self._pause(stop)

    def _pause(self, stop: threading.Event) -> None:
        """The poll interval, with a NOOP as often as IDLE would be renewed: servers log out
        sessions that stay silent for 30 minutes."""
        deadline = time.monotonic() + self.mailbox.poll_interval_seconds
        while (left := deadline - time.monotonic()) > 0:
            if stop.wait(min(left, self.options.idle_renew_seconds)):
                return
            with boundary(self.mailbox, "keeping the session alive (NOOP)"):
                self.client.noop()

    def _pending(self) -> bool:
        """Whether a message is waiting that no IDLE would announce again.

        The server reports a new message (EXISTS) once, with whatever command is running:
        with a MOVE the next SEARCH finds it; with the SEARCH itself the answer was made
        before the message was seen, so the EXISTS is the only sign.
        """
        untagged = self._untagged()
        untagged.pop("EXISTS", None)
        return bool(self._uids_after(self._read_up_to)) or "EXISTS" in untagged

    def _untagged(self) -> dict[str, list[Any]]:
        # imaplib files every untagged response here; imapclient offers no public view.
        responses: dict[str, list[Any]] = self.client._imap.untagged_responses
        return responses

    def _idle(self, stop: threading.Event) -> None:
        # A short IDLE first, then a look: a message delivered just as IDLE began can go
        # unannounced until the server's own periodic check (Dovecot: 30 s).
        settled = time.monotonic() + self.options.idle_settle_seconds
        if self._idle_until(stop, settled) or self._pending():
            return
        self._idle_until(stop, time.monotonic() + self.options.idle_renew_seconds)

    def _idle_until(self, stop: threading.Event, deadline: float) -> bool:
        """IDLE until ``deadline``; True when it ended early (new mail, stop, lost link)."""
        client = self.client
        with boundary(self.mailbox, "waiting for new mail (IDLE)"):
            client.idle()
            ended = False
            try:
                while not stop.is_set():
                    timeout = min(self.options.wake_seconds, deadline - time.monotonic())
                    if timeout <= 0:
                        return False
                    started = time.monotonic()
                    responses = client.idle_check(timeout=timeout)
                    bye = next((r for r in responses if r[:1] == (b"BYE",)), None)
                    if bye is not None:
                        ended = True  # no DONE to a connection the server has closed
                        raise session_ended(self.mailbox, _text(bye[1:]))
                    if any(_announces_mail(r) for r in responses):
                        return True
                    # imapclient returns nothing, at once, when the connection has ended;
                    # leaving IDLE below then raises and the poller reconnects.
                    if not responses and time.monotonic() - started < timeout / 2:
                        return True
                return True
            finally:
                if not ended:
                    client.idle_done()

    def close(self) -> None:
        """Log out; never raises."""
        client, self._client = self._client, None
        if client is not None:
            close_imap(client)


def _text(words: tuple[Any, ...]) -> str:
    return " ".join(w.decode(errors="replace") if isinstance(w, bytes) else str(w)
                    for w in words)


def _announces_mail(response: tuple[Any, ...]) -> bool:
    return len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT")
