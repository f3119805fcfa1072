"""The poller: every configured mailbox in one process, a thread per mailbox connection.

``Poller.run()`` starts one ``MailboxWorker`` thread per mailbox and, for the
long-running form, the upkeep thread (background tasks every tick, pruning hourly,
auth upkeep daily). ``stop()`` — wired to SIGTERM/SIGINT by ``stop_on_signals`` —
lets each worker finish the message in hand, acknowledge what is committed and
log out. With ``once`` every worker drains its mailbox and ends, the upkeep jobs
run once, and ``run()`` returns the per-mailbox summary.
"""

from __future__ import annotations

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
from ingest.poll_worker import MailboxWorker, PollOptions, Report, RetryPolicy, Tally
from ingest.sources.checkpoints import recorded_keys
from ingest.sources.registry import SOURCES
from ingest.sources.source import SourceContext, SourceFactory
from ingest.upkeep import Task, Upkeep, Watched

__all__ = ["MailboxSummary", "PollOptions", "PollSummary", "Poller", "RetryPolicy",
           "stop_on_signals"]
_JOIN_SECONDS = 0.5  # the main thread wakes this often, so signal handlers run promptly


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

    @classmethod
    def of(cls, mailbox: str, tally: Tally) -> MailboxSummary:
        return cls(mailbox, tally.processed, tally.ignored, tally.quarantined, tally.duplicates,
                   tally.elapsed_seconds, tally.error)

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
        self._stop = threading.Event()
        self.providers = providers or TokenProviders(settings.state_dir,
                                                     settings.security.cache_key)
        self.workers = [
            MailboxWorker(self._context(box, engine), engine, pipeline, options, self._stop,
                          registry=registry, report=report)
            for box in select_mailboxes(settings, options.mailboxes)
        ]
        watched = [Watched(w.mailbox, w.checkpoints) for w in self.workers]
        self.upkeep = Upkeep(settings, engine, self.providers, watched, background)

    def _context(self, box: MailboxConfig, engine: Engine) -> SourceContext:
        def recorded(keys: Sequence[str]) -> set[str]:
            return recorded_keys(engine, box.name, keys)

        return SourceContext(box, self.providers, recorded, self.options.source,
                             read_only=self.options.dry_run)

    def stop(self) -> None:
        """Ask every worker to finish the message in hand and end; safe from a signal handler."""
        self._stop.set()

    def run(self) -> PollSummary:
        """Poll until stopped (or drained, with ``once``); returns the per-mailbox summary."""
        with single_sqlite_poller(self.engine, dry_run=self.options.dry_run):
            return self._run()

    def _run(self) -> PollSummary:
        threads = [threading.Thread(target=w.run, name=f"poll-{w.name}", daemon=True)
                   for w in self.workers]
        upkeep = None
        if not (self.options.once or self.options.dry_run):
            upkeep = threading.Thread(target=self.upkeep.run, name="poll-upkeep", daemon=True,
                                      args=(self._stop, self.options.tick_seconds))
            upkeep.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(_JOIN_SECONDS)
        self._stop.set()
        if upkeep is not None:
            upkeep.join()
        elif not self.options.dry_run:
            self.upkeep.tick()
        return PollSummary(tuple(MailboxSummary.of(w.name, w.tally) for w in self.workers))


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
