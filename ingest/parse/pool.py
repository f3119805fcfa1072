"""Parsing in worker processes, for backlogs: parsing is CPU work, and one process has one core.

A batch is cut into one slice per process. ``start`` returns at once, so the poller
records one chunk of a fetched batch while the next chunks are parsed. Small batches
(a message that IDLE just announced) parse in-process: shipping them to another
process costs more than parsing them, and the processes start only when a batch needs
them (or at once, where forking is cheap). If a worker process dies, the batch is
parsed in-process and the processes start afresh with the next large batch.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from ingest.parse.base import ParsedMessage
from ingest.parse.message import ParseOptions, parse_message

log = logging.getLogger(__name__)
# Below this many messages a batch is parsed in-process.
MIN_POOLED = 32
_PARENT_CHECK_SECONDS = 1.0

_WARM_UP = b"From: a@example.test\r\nSubject: Re: warm-up\r\n\r\napproved\r\n"
_options: ParseOptions | None = None  # each worker process's own, set once at its start


Parsing = Callable[[], list[ParsedMessage]]  # waits for a batch begun with ``start``


class Parser(Protocol):
    """Turns a batch of raw messages into parsed ones, in order."""

    def parse(self, raws: Sequence[bytes]) -> list[ParsedMessage]:
        """Parse every message of ``raws``; never raises for what they contain."""
        ...

    def start(self, raws: Sequence[bytes]) -> Parsing:
        """Begin parsing ``raws`` (elsewhere, if it can); call the result for the messages."""
        ...


class InProcessParser:
    """Parses in the calling thread."""

    def __init__(self, options: ParseOptions) -> None:
        self.options = options

    def parse(self, raws: Sequence[bytes]) -> list[ParsedMessage]:
        """Parse every message of ``raws`` here."""
        return [parse_message(raw, self.options) for raw in raws]

    def start(self, raws: Sequence[bytes]) -> Parsing:
        """Nothing runs elsewhere: the messages are parsed when asked for."""
        return lambda: self.parse(raws)


class ParsePool:
    """Parses large batches in ``workers`` processes; a context manager that stops them."""

    def __init__(self, options: ParseOptions, workers: int) -> None:
        self.local = InProcessParser(options)
        self.workers = workers
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        if threading.active_count() == 1:
            self._executor = self._start()  # forking is cheap and safe now: no thread yet

    def _start(self) -> ProcessPoolExecutor:
        # Forked while this is the only thread, the processes inherit the imported modules
        # and the compiled vocabulary for free. Once threads run, forking could copy a lock
        # one of them holds: then a fresh interpreter from the fork server is safe (~1 s).
        single = threading.active_count() == 1
        context = multiprocessing.get_context("fork" if single else "forkserver")
        self.local.parse([_WARM_UP])  # compiles the vocabulary, for forked processes too
        executor = ProcessPoolExecutor(self.workers, context, initializer=_set_options,
                                       initargs=(self.local.options,))
        list(executor.map(_parse_slice, [[_WARM_UP]] * self.workers))  # every process, now
        return executor

    def _running(self) -> ProcessPoolExecutor:
        """The processes, started on the first batch that needs them if not at creation."""
        with self._lock:
            if self._executor is None:
                self._executor = self._start()
            return self._executor

    def parse(self, raws: Sequence[bytes]) -> list[ParsedMessage]:
        """Parse ``raws`` across the worker processes (small batches here)."""
        return self.start(raws)()

    def start(self, raws: Sequence[bytes]) -> Parsing:
        """Hand ``raws`` to the worker processes, a slice each; small batches wait to be
        parsed here."""
        if len(raws) < MIN_POOLED:
            return self.local.start(raws)
        size = -(-len(raws) // self.workers)
        slices = [raws[first:first + size] for first in range(0, len(raws), size)]
        try:
            executor = self._running()
            futures = [executor.submit(_parse_slice, part) for part in slices]
        except BrokenProcessPool:
            return self._broken(raws)

        def gather() -> list[ParsedMessage]:
            try:
                return [parsed for future in futures for parsed in future.result()]
            except BrokenProcessPool:
                return self._broken(raws)()

        return gather

    def _broken(self, raws: Sequence[bytes]) -> Parsing:
        log.warning("a parsing process ended unexpectedly; parsing this batch in-process "
                    "and starting the processes again")
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
        return self.local.start(raws)

    def close(self) -> None:
        """Stop the worker processes."""
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _set_options(options: ParseOptions) -> None:
    global _options
    _options = options
    # A poller killed with SIGKILL cannot stop its parsing processes, and they would wait
    # for work forever: each leaves as soon as the process that started it is gone.
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_SECONDS)
    os._exit(0)


def _parse_slice(raws: Sequence[bytes]) -> list[ParsedMessage]:
    assert _options is not None, "the pool's initializer sets the options"
    return [parse_message(raw, _options) for raw in raws]
