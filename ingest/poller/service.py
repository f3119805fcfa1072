"""The poller: the configured mailboxes in one process, a thread per mailbox connection.

``Poller.run()`` hands the mailbox folders to a lease keeper (``poll_keeper``), which
runs one ``MailboxWorker`` thread per folder this poller holds, and, for the
long-running form, starts the upkeep thread (background tasks every tick, pruning
hourly, auth upkeep daily). On PostgreSQL several pollers share the folders through
leases (``leases``); on SQLite, or in a dry run, this poller takes them all. ``stop()``
— wired to SIGTERM/SIGINT by ``stop_on_signals`` — lets each worker finish the batches
in hand, acknowledge what is committed and log out. With ``once`` every worker drains
its folder and ends, the upkeep jobs run once, and ``run()`` returns the per-mailbox
summary, naming the folders another live poller held.
"""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from filelock import FileLock, Timeout
from sqlalchemy import Engine

from ingest.auth import TokenProviders
from ingest.config import MailboxConfig, Settings
from ingest.errors import ConfigError, UserError
from ingest.pipeline import PipelineConfig
from ingest.pipeline.pool import PreparePool, Preparer
from ingest.poller.book import AllMailboxes, Book
from ingest.poller.folder_pass import Report
from ingest.poller.keeper import Keeper
from ingest.poller.upkeep import Task, Upkeep, Watched
from ingest.poller.worker import MailboxTally, MailboxWorker, PollOptions, RetryPolicy
from ingest.sources.base import SourceContext, SourceFactory
from ingest.sources.registry import SOURCES, make_source
from ingest.store.checkpoints import Checkpoints, recorded_keys
from ingest.store.leases import Key, LeaseBook
from ingest.store.statistics import PlannerStatistics

_YOUNG_OBJECTS = 10_000  # allocations between two collections of the youngest generation

__all__ = ["MailboxSummary", "PollOptions", "PollSummary", "Poller", "RetryPolicy",
           "stop_on_signals"]


@dataclass(frozen=True)
class MailboxSummary:
    """One mailbox's counts for this run, and the error it ended with, if any."""

    mailbox: str
    processed: int
    ignored: int
    quarantined: int
    duplicates: int
    elapsed_seconds: float
    error: str | None = None
    held_by: str | None = None  # the live poller that held this folder's lease meanwhile

    @classmethod
    def of(cls, mailbox: str, tallies: Sequence[MailboxTally], held_by: str | None = None,
           ) -> MailboxSummary:
        """The counts of every worker this run had on the mailbox (a lease can come back)."""
        return cls(mailbox, sum(t.processed for t in tallies), sum(t.ignored for t in tallies),
                   sum(t.quarantined for t in tallies), sum(t.duplicates for t in tallies),
                   sum(t.elapsed_seconds for t in tallies),
                   tallies[-1].error if tallies else None, held_by)

    @property
    def total(self) -> int:
        return self.processed + self.ignored + self.quarantined + self.duplicates


@dataclass(frozen=True)
class PollSummary:
    """Every mailbox's summary; ``failed`` when any mailbox ended with an error."""

    mailboxes: tuple[MailboxSummary, ...]

    @property
    def failed(self) -> bool:
        return any(box.error for box in self.mailboxes)


class Poller:
    """Polls the selected mailboxes until ``stop()`` (or, with ``once``, until drained)."""

    def __init__(self, settings: Settings, engine: Engine, pipeline: PipelineConfig, *,
                 options: PollOptions | None = None, background: Sequence[Task] = (),
                 providers: TokenProviders | None = None,
                 registry: Mapping[str, SourceFactory] = SOURCES,
                 report: Report | None = None) -> None:
        self.options = options = options or PollOptions()
        self.engine = engine
        self.pipeline = pipeline
        self.registry = registry
        self.report = report
        self.parse_workers = settings.parse_workers
        self.preparer: Preparer | None = None  # while running: the pool, if there is one
        self.statistics = PlannerStatistics(engine)
        self._stop = threading.Event()
        self.providers = providers or TokenProviders(settings.state_dir,
                                                     settings.security.cache_key)
        self.boxes: dict[Key, MailboxConfig] = {
            (box.name, make_source(self._context(box), registry).folder): box
            for box in select_mailboxes(settings, options.mailboxes)
        }
        self.keeper = Keeper(self._book(settings), list(self.boxes), self._worker,
                             lease_seconds=settings.lease_seconds,
                             once=options.once or options.dry_run)
        watched = [Watched(box, Checkpoints(engine, name, folder))
                   for (name, folder), box in self.boxes.items()]
        self.upkeep = Upkeep(settings, engine, self.providers, watched, background)

    def _book(self, settings: Settings) -> Book:
        """Leases on PostgreSQL; a dry run changes nothing, so it takes every folder."""
        if self.engine.dialect.name != "postgresql" or self.options.dry_run:
            return AllMailboxes(list(self.boxes))
        return LeaseBook(self.engine, list(self.boxes), settings.lease_seconds,
                         register=not self.options.once)

    def _context(self, box: MailboxConfig) -> SourceContext:
        def recorded(keys: Sequence[str]) -> set[str]:
            return recorded_keys(self.engine, box.name, keys)

        return SourceContext(box, self.providers, recorded, self.options.source,
                             read_only=self.options.dry_run)

    def _worker(self, key: Key, stop: threading.Event) -> MailboxWorker:
        box = self.boxes[key]
        return MailboxWorker(self._context(box), self.engine, self.pipeline, self.options, stop,
                             registry=self.registry, report=self.report, preparer=self.preparer,
                             statistics=self.statistics)

    def stop(self) -> None:
        """Ask every worker to finish the batches in hand and end; safe from a signal handler."""
        self._stop.set()
        self.keeper.halt()

    def run(self) -> PollSummary:
        """Poll until stopped (or drained, with ``once``); returns the per-mailbox summary."""
        # A backlog makes a few hundred short-lived objects a message: at the default
        # threshold (700) the collector ran 240 times a 5,000-message pass, a tenth of a
        # second of the poller's thread; at 10,000 about ten. The parse processes inherit it.
        gc.set_threshold(_YOUNG_OBJECTS, *gc.get_threshold()[1:])
        with single_sqlite_poller(self.engine, dry_run=self.options.dry_run), \
                self._parse_pool():
            return self._run()

    @contextmanager
    def _parse_pool(self) -> Iterator[None]:
        """Worker processes that prepare (parse) backlogs, for the length of the run."""
        if self.parse_workers < 2:
            yield
            return
        with PreparePool(self.pipeline, self.parse_workers) as pool:
            self.preparer = pool
            try:
                yield
            finally:
                self.preparer = None

    def _run(self) -> PollSummary:
        upkeep = None
        if not (self.options.once or self.options.dry_run):
            upkeep = threading.Thread(target=self.upkeep.run, name="poll-upkeep", daemon=True,
                                      args=(self._stop, self.options.tick_seconds))
            upkeep.start()
        try:
            self.keeper.run(self._stop)
        finally:
            self._stop.set()
            if upkeep is not None:
                upkeep.join()
        if upkeep is None and not self.options.dry_run:
            self.upkeep.tick()
        return self.summary()

    def summary(self) -> PollSummary:
        """Each mailbox's counts so far, in the order of the configuration."""
        return PollSummary(tuple(
            MailboxSummary.of(box.name, [w.tally for w in self.keeper.workers.get(key, [])],
                              self.keeper.held_elsewhere.get(key))
            for key, box in self.boxes.items()))


@contextmanager
def single_sqlite_poller(engine: Engine, *, dry_run: bool = False) -> Iterator[None]:
    """On SQLite, hold a lock file beside the database for the whole run: one poller only.

    SQLite has no row locks to share mailboxes between workers (PostgreSQL does), so a
    second poller is refused with a sentence that says why, instead of fighting the first.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or dry_run:
        yield
        return
    lock = FileLock(f"{database}.poller.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(
            f"another 'ackmail poll' is already running on the SQLite database {database}; "
            "SQLite takes one poller (stop the other, or use PostgreSQL to run several)"
        ) from None
    try:
        yield
    finally:
        lock.release()


def select_mailboxes(settings: Settings, names: Sequence[str]) -> list[MailboxConfig]:
    """The mailboxes to poll: those named (each must exist), else all configured."""
    boxes = [settings.mailbox(name) for name in names] if names else list(settings.mailboxes)
    if not boxes:
        raise ConfigError(f"{settings.path}: no [[mailbox]] is configured, so there is nothing "
                          "to poll; add one (see 'ackmail init')")
    return boxes


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Call ``stop`` on SIGTERM or SIGINT while inside; the previous handlers come back after."""

    def handle(signum: int, frame: FrameType | None) -> None:
        stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
