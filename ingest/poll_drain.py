"""One pass over a folder's new mail, with fetching, recording and filing overlapped.

Each batch waits on three things in turn: the mail server (FETCH, and later the
MOVE that files it), the parse processes (the prepare stage), and the database
(the record). Done one after the other, the poller's thread spends most of a
batch waiting. So the connection's work runs on a thread of its own, in the
order it is asked for, while the poller's thread records: batch k is recorded
while the server sends batch k+1 and files batch k-1, and batch k+1 is parsed
meanwhile.

The order that makes a message exactly-once is kept: a batch is filed only after
its record has committed, and the checkpoint moves only after the filing. A
session's first batch is recorded and filed before anything more is fetched, so a
link that dies inside every second FETCH still files a batch per session.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from ingest.pipeline.pool import Preparer, Preparing
from ingest.sources.source import Batch, Cursor, Settled, Source

Record = Callable[[Batch, Preparing], list[Settled]]
File = Callable[[Batch, list[Settled]], None]
_Fetched = tuple[Batch, Preparing]


class Drain:
    """Fetches, records and files every new message of ``source``; ``run`` once."""

    def __init__(self, source: Source, preparer: Preparer, record: Record, file: File,
                 stop: threading.Event) -> None:
        self.source = source
        self.preparer = preparer
        self.record = record
        self.file = file
        self.stop = stop
        self._filing: Future[None] | None = None

    def run(self, cursor: Cursor) -> bool:
        """Handle every message after ``cursor``; False when there was none.

        A stop request finishes what is in hand, the batch being recorded and those
        already fetched (at most two more), and fetches nothing else: they are recorded
        and filed, so stopping never leaves a committed message unfiled.
        """
        connection = ThreadPoolExecutor(1, thread_name_prefix="mail-connection")
        try:
            batches = self.source.fetch(cursor)
            first = self._fetch(connection, batches).result()
            if first is None:
                return False
            self._record_and_file(connection, first)
            self._wait_filed()
            self._overlapped(connection, batches)
            self._wait_filed()
            return True
        finally:
            # After a failure, what is queued is not needed: a recorded batch left unfiled
            # comes again with the next session and is filed as a duplicate then.
            connection.shutdown(wait=True, cancel_futures=True)

    def _overlapped(self, connection: ThreadPoolExecutor, batches: Iterator[Batch]) -> None:
        in_hand: _Fetched | None = None
        fetching = None if self.stop.is_set() else self._fetch(connection, batches)
        while fetching is not None and (ready := fetching.result()) is not None:
            fetching = None if self.stop.is_set() else self._fetch(connection, batches)
            if in_hand is not None:
                self._record_and_file(connection, in_hand)
            in_hand = ready
        if in_hand is not None:
            self._record_and_file(connection, in_hand)

    def _fetch(self, connection: ThreadPoolExecutor,
               batches: Iterator[Batch]) -> Future[_Fetched | None]:
        """The next batch, fetched on the connection's thread, its prepare stage begun."""
        def fetch() -> _Fetched | None:
            batch = next(batches, None)
            if batch is None:
                return None
            return batch, self.preparer.start([item.raw for item in batch.items])

        return connection.submit(fetch)

    def _record_and_file(self, connection: ThreadPoolExecutor, fetched: _Fetched) -> None:
        batch, preparing = fetched
        settled = self.record(batch, preparing)
        self._wait_filed()  # the batch before: done by now, and its error is this session's
        self._filing = connection.submit(self.file, batch, settled)

    def _wait_filed(self) -> None:
        if self._filing is not None:
            self._filing.result()
            self._filing = None
