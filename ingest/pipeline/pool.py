"""The prepare stage in worker processes, for backlogs: parsing is CPU work, and one
process has one core.

A batch is cut into one slice per process. ``start`` returns at once, so the poller
records one fetched batch while the next is prepared. Small batches (a message that
IDLE just announced) are prepared in-process: shipping them to another process costs
more than the work, and the processes start only when a batch needs them (or at
once, where forking is cheap). If a worker process dies, the batch is prepared
in-process and the processes start afresh with the next large batch.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from ingest.pipeline.base import PipelineConfig
from ingest.pipeline.prepare import Prepared, prepare

log = logging.getLogger(__name__)
# Below this many messages a batch is prepared in-process.
MIN_POOLED = 32
_PARENT_CHECK_SECONDS = 1.0
_NICENESS = 10

_WARM_UP = b"From: a@example.test\r\nSubject: Re: warm-up\r\n\r\napproved\r\n"
_config: PipelineConfig | None = None  # each worker process's own, set once at its start


Preparing = Callable[[], list[Prepared]]  # waits for a batch begun with ``start``


class Preparer(Protocol):
    """Runs the prepare stage over a batch of raw messages, in order."""

    def prepare(self, raws: Sequence[bytes]) -> list[Prepared]:
        """Prepare every message of ``raws``; never raises for what they contain."""
        ...

    def start(self, raws: Sequence[bytes]) -> Preparing:
        """Begin preparing ``raws`` (elsewhere, if it can); call the result for the messages."""
        ...


class InProcessPreparer:
    """Prepares in the calling thread."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config

    def prepare(self, raws: Sequence[bytes]) -> list[Prepared]:
        """Prepare every message of ``raws`` here."""
        return [prepare(raw, self.config) for raw in raws]

    def start(self, raws: Sequence[bytes]) -> Preparing:
        """Nothing runs elsewhere: the messages are prepared when asked for."""
        return lambda: self.prepare(raws)


class PreparePool:
    """Prepares large batches in ``workers`` processes; a context manager that stops them."""

    def __init__(self, config: PipelineConfig, workers: int) -> None:
        self.local = InProcessPreparer(config)
        self.workers = workers
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        # Compiling the vocabulary takes a quarter of a second of CPU: done once here, before
        # the fork, the processes inherit it instead of each compiling its own.
        self.local.prepare([_WARM_UP])
        if threading.active_count() == 1:
            self._executor = self._start()  # forking is cheap and safe now: no thread yet

    def _start(self) -> ProcessPoolExecutor:
        # Forked while this is the only thread, the processes inherit the imported modules.
        # Once threads run, forking could copy a lock one of them holds: then a fresh
        # interpreter from the fork server is safe (~1 s).
        single = threading.active_count() == 1
        if single:
            # What lives as long as the process (modules, the compiled vocabulary) leaves the
            # collector's sight: full collections stop walking it, here and in each process,
            # and the processes' collections no longer copy the pages they share with this one.
            gc.freeze()
        context = multiprocessing.get_context("fork" if single else "forkserver")
        executor = ProcessPoolExecutor(self.workers, context, initializer=_set_config,
                                       initargs=(self.local.config,))
        # The processes start with the first task: now, while forking is safe; a process
        # from the fork server compiles its vocabulary with it.
        executor.submit(_prepare_slice, [_WARM_UP])
        return executor

    def _running(self) -> ProcessPoolExecutor:
        """The processes, started on the first batch that needs them if not at creation."""
        with self._lock:
            if self._executor is None:
                self._executor = self._start()
            return self._executor

    def prepare(self, raws: Sequence[bytes]) -> list[Prepared]:
        """Prepare ``raws`` across the worker processes (small batches here)."""
        return self.start(raws)()

    def start(self, raws: Sequence[bytes]) -> Preparing:
        """Hand ``raws`` to the worker processes, a slice each; small batches wait to be
        prepared here."""
        if len(raws) < MIN_POOLED:
            return self.local.start(raws)
        size = -(-len(raws) // self.workers)
        slices = [raws[first:first + size] for first in range(0, len(raws), size)]
        try:
            executor = self._running()
            futures = [executor.submit(_prepare_slice, part) for part in slices]
        except BrokenProcessPool:
            return self._broken(raws)

        def gather() -> list[Prepared]:
            try:
                return [prepared for future in futures for prepared in future.result()]
            except BrokenProcessPool:
                return self._broken(raws)()

        return gather

    def _broken(self, raws: Sequence[bytes]) -> Preparing:
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

    def __enter__(self) -> PreparePool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _set_config(config: PipelineConfig) -> None:
    global _config
    _config = config
    # The poller's own threads hold the transaction and the connection: on a busy machine
    # they go first, and parsing (which runs a batch ahead) takes the CPU they leave.
    os.nice(_NICENESS)
    # A poller killed with SIGKILL cannot stop its parsing processes, and they would wait
    # for work forever: each leaves as soon as the process that started it is gone.
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_SECONDS)
    os._exit(0)


def _prepare_slice(raws: Sequence[bytes]) -> list[Prepared]:
    assert _config is not None, "the pool's initializer sets the configuration"
    return [prepare(raw, _config) for raw in raws]
