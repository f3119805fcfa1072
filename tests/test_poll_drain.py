"""Drain overlaps fetching, recording and filing, and keeps their order where it matters.

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
from ingest.poll_drain import Drain
from ingest.sources.base import SourceRef
from ingest.sources.source import Batch, Cursor, Fetched, Settled
from ingest.store.models import MessageStatus

WAIT = 10.0  # seconds; a step that waits this long means the overlap did not happen


class Script:
    """A source of ``count`` one-message batches that logs what is done, in order."""

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

    def fetch(self, cursor: Cursor) -> Iterator[Batch]:
        for n in range(1, self.count + 1):
            self.fetch_started[n].set()
            self.note(f"fetch {n}")
            if n == self.fail_fetch:
                raise TransientError(f"link cut while fetching batch {n}")
            ref = SourceRef("box", f"test:{n}", uid=n)
            yield Batch((Fetched(ref, b"Subject: %d\r\n\r\nok\r\n" % n),), Cursor(1, n))

    def start(self, raws: Sequence[bytes]) -> Preparing:
        return list

    def record(self, batch: Batch, preparing: Preparing) -> list[Settled]:
        n = _number(batch)
        if self.overlap and 1 < n <= self.count - 2:
            # Batch n+1 is in hand already; batch n+2 is fetched while this one is recorded.
            assert self.fetch_started[n + 2].wait(WAIT), f"batch {n + 2} was not fetched meanwhile"
        self.note(f"record {n}")
        if n == self.stop_after_record:
            self.stop.set()
        return [Settled(item.ref, MessageStatus.IGNORED) for item in batch.items]

    def file(self, batch: Batch, settled: list[Settled]) -> None:
        n = _number(batch)
        if n == self.fail_file:
            raise TransientError(f"MOVE of batch {n} failed")
        self.note(f"file {n}")

    def drain(self) -> Drain:
        return Drain(self, self, self.record, self.file, self.stop)  # type: ignore[arg-type]

    def done(self, step: str) -> list[int]:
        return [int(entry.split()[1]) for entry in self.log if entry.startswith(step)]


def _number(batch: Batch) -> int:
    return batch.items[0].ref.uid or 0


def test_every_batch_is_recorded_then_filed_once_in_order() -> None:
    script = Script(6, overlap=True)
    assert script.drain().run(Cursor()) is True
    assert script.done("record") == script.done("file") == [1, 2, 3, 4, 5, 6]
    log = script.log
    for n in range(1, 7):
        assert log.index(f"record {n}") < log.index(f"file {n}")
    # The session's first batch is filed before a second FETCH: a link that dies inside
    # every second FETCH still files a batch per session.
    assert log.index("file 1") < log.index("fetch 2")
    assert threading.active_count() == 1 or all(
        not t.name.startswith("mail-connection") for t in threading.enumerate())


def test_nothing_new_is_reported() -> None:
    script = Script(0)
    assert script.drain().run(Cursor()) is False
    assert script.log == []


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
    assert failing not in script.done("record")
    assert script.done("record")[:1] == [1]


def test_a_failed_filing_is_this_pass_s_error() -> None:
    script = Script(6, fail_file=2)
    with pytest.raises(TransientError, match="MOVE of batch 2"):
        script.drain().run(Cursor())
    assert 2 not in script.done("file")
    assert max(script.done("record")) <= 4  # found out within two batches
