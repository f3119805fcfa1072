"""A folder pass overlaps fetching, recording and filing, and keeps the exactly-once order.

A scripted source stands in for the server here: the tests need to hold a FETCH open at
a given moment, which a real server does not do on cue (tests/test_poll.py and
tests/faults/ run the same code against a real Dovecot).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from ingest.errors import TransientError
from ingest.pipeline.pool import Preparing
from ingest.poller.folder_pass import FolderPass
from ingest.sources.base import Cursor, FetchedBatch, FetchedMessage, Filing, SourceRef

WAIT = 10.0  # seconds; a step that waits this long means the overlap did not happen


class Script:
    """A source of ``count`` one-message batches, its recorder and its checkpoint, logging
    what is done, in order."""

    def __init__(self, count: int, *, fail_fetch: int = 0, fail_file: int = 0,
                 overlap: bool = False) -> None:
        self.count, self.fail_fetch, self.fail_file = count, fail_fetch, fail_file
        self.overlap = overlap
        self.log: list[str] = []
        self.lock = threading.Lock()
        self.fetch_started = {n: threading.Event() for n in range(1, count + 2)}
        self.stop = threading.Event()
        self.stop_after_record = 0

    def note(self, entry: str) -> None:
        with self.lock:
            self.log.append(entry)

    def fetch(self, cursor: Cursor) -> Iterator[FetchedBatch]:
        for n in range(1, self.count + 1):
            self.fetch_started[n].set()
            self.note(f"fetch {n}")
            if n == self.fail_fetch:
                raise TransientError(f"link cut while fetching batch {n}")
            ref = SourceRef("box", f"test:{n}", uid=n)
            message = FetchedMessage(ref, b"Subject: %d\r\n\r\nok\r\n" % n)
            yield FetchedBatch((message,), Cursor(1, n))

    def start(self, raws: Sequence[bytes]) -> Preparing:
        return list

    def record(self, batch: FetchedBatch, preparing: Preparing,
               checkpoint: Cursor | None) -> list[Filing]:
        n = _number(batch)
        if checkpoint is not None:
            self.note(f"checkpoint {checkpoint.last_uid}")
        if self.overlap and 1 < n <= self.count - 2:
            # FetchedBatch n+1 is in hand already; batch n+2 is fetched while this one is recorded.
            assert self.fetch_started[n + 2].wait(WAIT), f"batch {n + 2} was not fetched meanwhile"
        self.note(f"record {n}")
        if n == self.stop_after_record:
            self.stop.set()
        return [Filing(item.ref) for item in batch.items]

    def file(self, filings: Sequence[Filing]) -> None:
        n = filings[0].ref.uid or 0
        if n == self.fail_file:
            raise TransientError(f"MOVE of batch {n} failed")
        self.note(f"file {n}")

    def advance(self, cursor: Cursor) -> None:
        self.note(f"checkpoint {cursor.last_uid}")

    def drain(self) -> FolderPass:
        return FolderPass(self, self, self, self, self.stop)  # type: ignore[arg-type]

    def done(self, step: str) -> list[int]:
        return [int(entry.split()[1]) for entry in self.log if entry.startswith(step)]


def _number(batch: FetchedBatch) -> int:
    return batch.items[0].ref.uid or 0


def test_every_batch_is_recorded_then_filed_once_in_order() -> None:
    script = Script(6, overlap=True)
    assert script.drain().run(Cursor()) is True
    assert script.done("record") == script.done("file") == [1, 2, 3, 4, 5, 6]
    log = script.log
    for n in range(1, 7):
        assert log.index(f"record {n}") < log.index(f"file {n}")
    # A checkpoint rides with a later batch's record, never ahead of its filing, and
    # only forward; the last one ends the pass.
    checkpoints = script.done("checkpoint")
    assert checkpoints == sorted(set(checkpoints)) and log[-1] == "checkpoint 6"
    for n in checkpoints:
        assert log.index(f"file {n}") < log.index(f"checkpoint {n}")
    # The session's first batch is filed before a second FETCH: a link that dies inside
    # every second FETCH still files a batch per session.
    assert log.index("file 1") < log.index("fetch 2")
    assert threading.active_count() == 1 or all(
        not t.name.startswith("mail-connection") for t in threading.enumerate())


def test_nothing_new_is_reported() -> None:
    script = Script(0)
    assert script.drain().run(Cursor(1, 7)) is False
    assert script.log == ["checkpoint 7"]  # a poll that found nothing is still a success


def test_a_stop_finishes_the_batches_in_hand_and_fetches_no_more() -> None:
    script = Script(8)
    script.stop_after_record = 3
    script.drain().run(Cursor())
    recorded = script.done("record")
    assert recorded == script.done("file"), "a recorded batch was left unfiled"
    # What was fetched when the stop came (at most two batches) is finished, no more.
    assert recorded == script.done("fetch") == list(range(1, len(recorded) + 1))
    assert 4 <= len(recorded) <= 5


@pytest.mark.parametrize("failing", [2, 3, 5])
def test_a_failed_fetch_ends_the_pass_with_nothing_filed_unrecorded(failing: int) -> None:
    script = Script(6, fail_fetch=failing)
    with pytest.raises(TransientError, match=f"batch {failing}"):
        script.drain().run(Cursor())
    assert set(script.done("file")) <= set(script.done("record"))
    assert set(script.done("checkpoint")) <= set(script.done("file"))
    assert failing not in script.done("record")
    assert script.done("record")[:1] == [1]


def test_a_failed_filing_is_this_pass_s_error() -> None:
    script = Script(6, fail_file=2)
    with pytest.raises(TransientError, match="MOVE of batch 2"):
        script.drain().run(Cursor())
    assert 2 not in script.done("file")
    assert max(script.done("record")) <= 4  # found out within two batches
