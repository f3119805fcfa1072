"""One pass over a folder's new mail: the exactly-once order, with its waits overlapped.

THE INVARIANT. For every batch, in this order and never another:

    1. record   the batch's rows commit in one transaction (``BatchRecorder``);
    2. file     only then is the mail moved, flagged or deleted on the server;
    3. advance  only then does the checkpoint move past it (written with the next
                batch's record, or at the end of the pass).

A crash between any two steps re-fetches at most the batches in hand, which the
pipeline recognises as duplicates (source identity, or content hash + Message-ID)
and files again without recording anything twice. Nothing is filed unrecorded and
no checkpoint passes unfiled mail.

Each batch waits on three things in turn: the mail server (FETCH, and later the
filing), the parse processes (the prepare stage), and the database (the record).
So the connection's work runs on a thread of its own, in the order it is asked
for, while the poller's thread records: batch k is recorded while the server sends
batch k+1 and files batch k-1, and batch k+1 is parsed meanwhile. A pass's first
batch is recorded and filed before anything more is fetched, so a link that dies
inside every second FETCH still files a batch per session.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Protocol

from sqlalchemy import Engine

from ingest.pipeline import Arrival, PipelineConfig, Processed, process_batch
from ingest.pipeline.pool import Preparer, Preparing
from ingest.sources.base import Cursor, FetchedBatch, Filing, Source, SourceRef
from ingest.store.checkpoints import Checkpoints
from ingest.store.models import MessageStatus
from ingest.store.statistics import PlannerStatistics

Report = Callable[[str, SourceRef, Processed], None]
Count = Callable[[Processed], None]
_InHand = tuple[FetchedBatch, Preparing]


class Recorder(Protocol):
    """Step 1: commits a fetched batch's records (with a checkpoint riding along)."""

    def record(self, batch: FetchedBatch, preparing: Preparing,
               checkpoint: Cursor | None) -> list[Filing]:
        """Record ``batch``; returns where each message is to be filed."""
        ...


class CheckpointWriter(Protocol):
    """Step 3: moves the folder's checkpoint past filed mail."""

    def advance(self, cursor: Cursor) -> None:
        """Write ``cursor`` as the folder's position (its own transaction)."""
        ...


class BatchRecorder:
    """Records batches through the pipeline; the checkpoint of the batch filed before
    commits in the same transaction (a commit fewer per batch)."""

    def __init__(self, engine: Engine, pipeline: PipelineConfig, checkpoints: Checkpoints, *,
                 backlog_before: datetime | None, dry_run: bool, count: Count,
                 report: Report | None = None) -> None:
        self.engine = engine
        self.pipeline = pipeline
        self.checkpoints = checkpoints
        self.backlog_before = backlog_before
        self.dry_run = dry_run
        self.count = count
        self.report = report

    def record(self, batch: FetchedBatch, preparing: Preparing,
               checkpoint: Cursor | None) -> list[Filing]:
        """Record ``batch`` in one transaction; returns where each message is filed."""
        items = batch.items
        arrivals = [Arrival(item.ref, item.raw, self.backlog_before) for item in items]
        also = None if checkpoint is None else partial(self.checkpoints.advance_in,
                                                       cursor=checkpoint)
        results = process_batch(self.engine, self.pipeline, arrivals, dry_run=self.dry_run,
                                preparing=preparing, also=also)
        for item, result in zip(items, results, strict=True):
            self.count(result)
            if self.report is not None:
                self.report(item.ref.mailbox, item.ref, result)
        return [Filing(item.ref, result.filed_as == MessageStatus.QUARANTINED)
                for item, result in zip(items, results, strict=True)]


class FolderPass:
    """Fetches, records, files and checkpoints every new message of ``source``; ``run`` once.

    ``cursor`` and ``filed`` tell how far the pass got, also after it failed;
    ``pending`` is a filed batch's cursor whose checkpoint is not written yet (the
    next pass writes it).
    """

    def __init__(self, source: Source, recorder: Recorder, preparer: Preparer,
                 checkpoints: CheckpointWriter, stop: threading.Event, *, dry_run: bool = False,
                 statistics: PlannerStatistics | None = None,
                 pending: Cursor | None = None) -> None:
        self.source = source
        self.recorder = recorder
        self.preparer = preparer
        self.checkpoints = checkpoints
        self.stop = stop
        self.dry_run = dry_run
        self.statistics = statistics
        self.cursor = Cursor()
        self.filed = 0
        self.pending = pending
        self._pending_lock = threading.Lock()
        self._filing: Future[None] | None = None

    def run(self, cursor: Cursor) -> bool:
        """Handle every message after ``cursor``; False when there was none.

        A stop request finishes what is in hand, the batch being recorded and those
        already fetched (at most two more), and fetches nothing else: they are recorded
        and filed, so stopping never leaves a committed message unfiled.
        """
        self.cursor = cursor
        fetched = self._overlapped_pass(cursor)
        filed = self._take_pending()
        if filed is not None:
            self.checkpoints.advance(filed)
        elif not fetched and not self.dry_run:
            self.checkpoints.advance(self.cursor)  # nothing new: still a successful poll
        return fetched

    def _overlapped_pass(self, cursor: Cursor) -> bool:
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

    def _overlapped(self, connection: ThreadPoolExecutor, batches: Iterator[FetchedBatch]) -> None:
        in_hand: _InHand | None = None
        fetching = None if self.stop.is_set() else self._fetch(connection, batches)
        while fetching is not None and (ready := fetching.result()) is not None:
            fetching = None if self.stop.is_set() else self._fetch(connection, batches)
            if in_hand is not None:
                self._record_and_file(connection, in_hand)
            in_hand = ready
        if in_hand is not None:
            self._record_and_file(connection, in_hand)

    def _fetch(self, connection: ThreadPoolExecutor,
               batches: Iterator[FetchedBatch]) -> Future[_InHand | None]:
        """The next batch, fetched on the connection's thread, its prepare stage begun."""
        def fetch() -> _InHand | None:
            batch = next(batches, None)
            if batch is None:
                return None
            return batch, self.preparer.start([item.raw for item in batch.items])

        return connection.submit(fetch)

    def _record_and_file(self, connection: ThreadPoolExecutor, in_hand: _InHand) -> None:
        batch, preparing = in_hand
        # An empty batch writes nothing of its own; the end of the pass writes the checkpoint.
        checkpoint = self._take_pending() if batch.items else None
        try:
            filings = self.recorder.record(batch, preparing, checkpoint)  # step 1
        except BaseException:
            self._put_pending(checkpoint)
            raise
        self._wait_filed()  # the batch before: done by now, and its error is this pass's
        self._filing = connection.submit(self._file, batch, filings)

    def _file(self, batch: FetchedBatch, filings: Sequence[Filing]) -> None:
        """On the connection's thread, after the record committed: step 2, and step 3 noted."""
        if not self.dry_run:
            self.source.file(filings)
            self._put_pending(batch.cursor)
            if self.statistics is not None:
                self.statistics.recorded(len(filings))
        self.cursor = batch.cursor
        self.filed += len(filings)

    def _wait_filed(self) -> None:
        if self._filing is not None:
            self._filing.result()
            self._filing = None

    def _put_pending(self, cursor: Cursor | None) -> None:
        """Note ``cursor`` as filed, to be written; an older one never replaces a newer."""
        with self._pending_lock:
            if cursor is not None and (self.pending is None or self.pending.uidvalidity
                                       != cursor.uidvalidity or self.pending.last_uid
                                       <= cursor.last_uid):
                self.pending = cursor

    def _take_pending(self) -> Cursor | None:
        with self._pending_lock:
            pending, self.pending = self.pending, None
            return pending
