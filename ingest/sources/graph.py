"""Microsoft Graph: a delta query per folder, each message's MIME, a move after commit.

For tenants that switch IMAP off. A pass follows the folder's delta link page by page
(``@odata.nextLink``, then a new ``@odata.deltaLink``); each page is a batch, its link
the batch's cursor, so the checkpoint written with the next batch's records is the
place to resume from. When Graph has dropped the state behind a link (410 Gone) the
folder is read afresh: messages recorded before are recognised as duplicates by their
source key (the immutable id survives) or content hash and Message-ID, and are filed
again, never recorded twice. The MIME of each message (``/messages/{id}/$value``)
goes through the same pipeline as IMAP mail; up to four are fetched at once, the
mailbox's MailboxConcurrency limit (graph_http.py).

Nothing changes on the server until ``file``, after the records committed: then each
message is moved to the processed (or quarantine) folder, or marked read where there
is none. Graph offers no IDLE here, so ``wait`` is the poll interval (default 15 s).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, ClassVar

from ingest.sources.base import (
    Cursor,
    FetchedBatch,
    FetchedMessage,
    Filing,
    SourceContext,
    SourceRef,
)
from ingest.sources.connect import ServerRefused
from ingest.sources.graph_folders import FolderMissing, resolve_folder
from ingest.sources.graph_http import CONCURRENCY, DeltaGone, GraphClient, ItemGone
from ingest.timeutil import as_utc

log = logging.getLogger(__name__)

# What a delta page needs of each message; the MIME is fetched apart.
_SELECT = "$select=id,receivedDateTime,internetMessageId"


class GraphSource:
    """One mailbox folder read through Microsoft Graph."""

    protocol: ClassVar[str] = "graph"

    def __init__(self, context: SourceContext) -> None:
        self.context = context
        self.mailbox = context.mailbox
        self.options = context.options
        self._client: GraphClient | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.folder_id = ""
        self._destinations: dict[str, str] = {}

    @property
    def folder(self) -> str:
        return self.mailbox.folder

    @property
    def client(self) -> GraphClient:
        if self._client is None:
            raise RuntimeError("connect() the source first")
        return self._client

    def connect(self) -> None:
        """Get a token, find the folder, find (or create) the destination folders."""
        box = self.mailbox
        client = GraphClient(box, self.context.providers, self.options)
        try:
            self.folder_id = resolve_folder(client, box.folder, create=False)
            for destination in dict.fromkeys((box.processed_folder, box.quarantine_folder)):
                if destination:
                    self._destinations[destination] = self._destination_id(client, destination)
        except BaseException:
            client.close()
            raise
        self._client = client
        self._pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="graph-mail")

    def _destination_id(self, client: GraphClient, folder: str) -> str:
        try:
            return resolve_folder(client, folder, create=not self.context.read_only)
        except FolderMissing:
            return ""  # a dry run files nothing: a folder it would create is no error

    def fetch(self, cursor: Cursor) -> Iterator[FetchedBatch]:
        """The folder's changes after ``cursor``'s link (the whole folder without one)."""
        link = self._resumable(cursor.token)
        step, size = cursor.last_uid, min(self.options.first_batch_size, self.options.batch_size)
        while True:
            try:
                page = self.client.json("GET", link or self._first_link(), prefer=(
                    f"odata.maxpagesize={size}"), action="reading the folder's changes (delta)")
            except DeltaGone as gone:
                if link is None:
                    raise
                log.warning("%s (recorded messages are not recorded twice)", gone)
                link = None
                continue
            following = page.get("@odata.nextLink")
            token = following or page.get("@odata.deltaLink")
            if not isinstance(token, str):
                raise ServerRefused(f"mailbox '{self.mailbox.name}': Microsoft Graph sent a "
                                    "delta page with neither a next nor a delta link")
            step += 1
            yield FetchedBatch(self._download(page.get("value") or []), Cursor(None, step, token))
            if not isinstance(following, str):
                return
            link, size = following, self.options.batch_size

    def _first_link(self) -> str:
        return f"/mailFolders/{self.folder_id}/messages/delta?{_SELECT}"

    def _resumable(self, token: str | None) -> str | None:
        """The stored link, if it is this endpoint's link for this folder."""
        if token is None:
            return None
        ours = token.startswith(f"{self.mailbox.graph_endpoint}/") and \
            f"/mailFolders/{self.folder_id}/" in token
        if not ours:
            log.warning("mailbox '%s': the stored delta link is for another folder or "
                        "endpoint; reading folder '%s' afresh", self.mailbox.name, self.folder)
        return token if ours else None

    def _download(self, items: list[dict[str, Any]]) -> tuple[FetchedMessage, ...]:
        messages = [item for item in items if "@removed" not in item and item.get("id")]
        assert self._pool is not None
        fetched = self._pool.map(self._fetched, messages)
        return tuple(message for message in fetched if message is not None)

    def _fetched(self, item: dict[str, Any]) -> FetchedMessage | None:
        message_id = str(item["id"])
        try:
            raw = self.client.request("GET", f"/messages/{message_id}/$value",
                                      action="fetching a message's MIME").content
        except ItemGone:
            return None  # moved or deleted since the delta page was made
        received = item.get("receivedDateTime")
        ref = SourceRef(
            mailbox=self.mailbox.name,
            source_key=f"graph:{self.folder_id}:{message_id}",
            folder=self.folder,
            received_at=as_utc(datetime.fromisoformat(received)) if received else None,
        )
        return FetchedMessage(ref, raw)

    def file(self, filings: Sequence[Filing]) -> None:
        """Move each message to its folder (or mark it read where there is none)."""
        mine = f"graph:{self.folder_id}:"
        done = [filing for filing in filings if filing.ref.source_key.startswith(mine)]
        assert self._pool is not None
        for _ in self._pool.map(self._file_one, done):
            pass

    def _file_one(self, filing: Filing) -> None:
        message_id = filing.ref.source_key.rpartition(":")[2]
        box = self.mailbox
        destination = (box.quarantine_folder if filing.quarantined and box.quarantine_folder
                       else box.processed_folder)
        try:
            if destination is None:
                self.client.request("PATCH", f"/messages/{message_id}", {"isRead": True},
                                    action="marking a processed message read")
            else:
                self.client.request("POST", f"/messages/{message_id}/move",
                                    {"destinationId": self._destinations[destination]},
                                    action=f"moving a message to folder '{destination}'")
        except ItemGone:
            # Moved by an earlier session that ended before its checkpoint, or by a person.
            log.info("mailbox '%s': message %s is no longer in folder '%s'; nothing to file",
                     box.name, filing.ref.source_key, self.folder)

    def wait(self, stop: threading.Event) -> None:
        """The poll interval, or less when stopped."""
        stop.wait(self.mailbox.poll_interval_seconds)

    def close(self) -> None:
        """Stop the download threads and the connection pool; never raises."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        client, self._client = self._client, None
        if client is not None:
            client.close()
